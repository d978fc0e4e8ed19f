//! Ladder diagrams: snapshots of the SVG text (deterministic), and checks
//! of what a reader must be able to see in them.

use crate::traces;
use finrst::ladder::render;

/// Set FINRST_LADDER_OUT=DIR to also write the SVGs there (to render
/// them with a browser and look).
fn maybe_write(name: &str, svg: &str) {
    if let Ok(dir) = std::env::var("FINRST_LADDER_OUT") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.svg"), svg).unwrap();
    }
}

#[test]
fn snapshots() {
    for (name, t) in traces::all() {
        let svg = render(&t);
        maybe_write(name, &svg);
        insta::assert_snapshot!(format!("ladder_{name}"), svg);
    }
}

#[test]
fn rendering_is_deterministic() {
    for (_, t) in traces::all() {
        assert_eq!(render(&t), render(&t.clone()));
    }
}

#[test]
fn rst_is_red_with_its_why_visible_and_as_tooltip() {
    let svg = render(&traces::unread_close());
    assert!(svg.contains(r#"class="seg rst""#));
    assert!(
        svg.contains(r#"class="lbl rstl">R. seq 1 ack 2</text>"#),
        "{svg}"
    );
    let why = "close() with 1 unread byte → RST (TCPAbortOnClose)";
    assert!(svg.contains(&format!("<title>{why}</title>")));
    assert!(svg.contains(&format!(r#"class="why">{why}</text>"#)));
    // The program's side of the story.
    assert!(svg.contains(r#"class="call">close() = 0</text>"#));
    assert!(svg.contains(r#"class="call err">recv(10) = -1 ECONNRESET</text>"#));
    assert!(!svg.contains("<script"));
}

#[test]
fn lost_segments_are_dashed_and_crossed() {
    let svg = render(&traces::lost_then_linger_zero());
    assert_eq!(
        svg.matches(r#"class="seg lost""#).count(),
        2,
        "one in the legend, one lost segment"
    );
    assert!(svg.contains("P. 1:101 ack 1 (lost)"));
}

#[test]
fn long_idle_gaps_become_labelled_breaks() {
    let svg = render(&traces::clean_close());
    assert!(
        svg.contains(r#"class="gap">60 s later</text>"#),
        "TIME_WAIT break"
    );
    // The picture stays short: 60 s is a break, not 12000 px of line.
    let h: f64 = svg
        .split("height=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(h < 1200.0, "height {h}");
    let zw = render(&traces::zero_window());
    for g in ["1.6 s later", "3.2 s later", "2 s later"] {
        assert!(zw.contains(g), "probe backoff break {g}");
    }
    assert!(zw.contains(". ack 49153 win 0"), "zero window in the label");
}

#[test]
fn states_are_written_beside_their_host() {
    let svg = render(&traces::clean_close());
    for s in [
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE_WAIT",
        "LAST_ACK",
    ] {
        assert!(svg.contains(&format!(">{s}</text>")), "{s}");
    }
}

/// Widths Chromium measured for DejaVu Sans (Mono), the fonts the diagram
/// names first: the layout's estimate is never narrower, so a label it
/// makes room for is never clipped.
#[test]
fn width_estimate_is_never_narrower_than_the_font() {
    use finrst::ladder::text_width;
    // (text, px, mono, bold, Chromium's width in px)
    let measured = [
        ("ESTABLISHED", 11.0, false, true, 83.86),
        ("unaccepted:40000: SYN_RECV", 11.0, false, true, 186.11),
        ("WM", 100.0, false, true, 209.81),
        ("mw@%", 100.0, false, false, 374.22),
        ("mw@%", 100.0, false, true, 396.78),
        ("ODGQHN", 100.0, false, true, 502.49),
        ("bdgpq{$0", 100.0, false, true, 568.26),
        ("→✕·…", 100.0, false, false, 299.37),
        (
            "close() with 1 unread byte -> RST (RFC 2525 2.17,",
            11.0,
            false,
            false,
            278.71,
        ),
        (
            "conn: epoll_wait() = EPOLLIN|EPOLLOUT|EPOLLERR|EPOLLHUP|EPOLLRDHUP",
            11.5,
            true,
            false,
            456.96,
        ),
        ("listen-close-accept-queue", 17.0, false, true, 246.82),
        (
            "hover a segment for why it was sent",
            12.0,
            false,
            false,
            219.48,
        ),
    ];
    for (text, px, mono, bold, w) in measured {
        let est = text_width(text, px, mono, bold);
        assert!(est >= w, "{text:?} at {px} px: estimate {est:.1} < {w}");
    }
}

/// The font of a `<text>` by the rules of the SVG's own `<style>`: the
/// largest font-size of any rule that matches (when two match, the larger
/// is the safe guess), bold or monospace if any matching rule says so, and
/// the anchor from CSS before the attribute (CSS wins over presentation
/// attributes in SVG).
struct Font {
    px: f64,
    mono: bool,
    bold: bool,
    anchor: String,
}

/// A CSS rule: its selector's parts (`.legend`, `text`) and declarations.
type Rule = (Vec<String>, Vec<(String, String)>);

/// `.a.b{k:v;...}` and `.g text{...}` rules of the SVG's `<style>`.
fn style_rules(svg: &roxmltree::Document) -> Vec<Rule> {
    let css: String = svg
        .descendants()
        .filter(|n| n.has_tag_name("style"))
        .filter_map(|n| n.text())
        .collect();
    css.split('}')
        .filter_map(|r| r.split_once('{'))
        .map(|(sel, decls)| {
            let sel = sel.split_whitespace().map(str::to_string).collect();
            let decls = decls
                .split(';')
                .filter_map(|d| d.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            (sel, decls)
        })
        .collect()
}

fn classes<'a>(n: roxmltree::Node<'a, '_>) -> Vec<&'a str> {
    n.attribute("class")
        .map(|c| c.split_whitespace().collect())
        .unwrap_or_default()
}

/// Does a compound selector (`text`, `.call`, `.call.err`) match `n`?
fn compound_matches(sel: &str, n: roxmltree::Node) -> bool {
    let cls = classes(n);
    let (tag, rest) = match sel.find('.') {
        Some(i) => (&sel[..i], &sel[i..]),
        None => (sel, ""),
    };
    (tag.is_empty() || n.has_tag_name(tag))
        && rest
            .split('.')
            .filter(|c| !c.is_empty())
            .all(|c| cls.contains(&c))
}

fn font_of(n: roxmltree::Node, rules: &[Rule]) -> Font {
    let mut f = Font {
        px: 0.0,
        mono: false,
        bold: false,
        anchor: n.attribute("text-anchor").unwrap_or("start").to_string(),
    };
    let mut css_anchor = None;
    for (sel, decls) in rules {
        let Some((last, before)) = sel.split_last() else {
            continue;
        };
        let matches = compound_matches(last, n)
            && before
                .iter()
                .all(|a| n.ancestors().skip(1).any(|p| compound_matches(a, p)));
        if !matches {
            continue;
        }
        for (k, v) in decls {
            match k.as_str() {
                "font-size" => f.px = f.px.max(v.trim_end_matches("px").parse().unwrap()),
                "font-weight" => f.bold |= v == "bold",
                "font-family" => f.mono |= v.contains("Mono") || v.contains("monospace"),
                "text-anchor" => css_anchor = Some(v.clone()),
                _ => {}
            }
        }
    }
    assert!(f.px > 0.0, "no font-size for {n:?}");
    if let Some(a) = css_anchor {
        f.anchor = a;
    }
    f
}

/// A text's estimated box, in the SVG's coordinates: (left, top, right,
/// bottom, the text).
type TextBox = (f64, f64, f64, f64, String);

fn text_boxes(svg_text: &str) -> (f64, f64, Vec<TextBox>) {
    let doc = roxmltree::Document::parse(svg_text)
        .unwrap_or_else(|e| panic!("the ladder is not well-formed XML: {e}"));
    let root = doc.root_element();
    let vb: Vec<f64> = root
        .attribute("viewBox")
        .expect("a viewBox")
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(&vb[..2], &[0.0, 0.0]);
    let rules = style_rules(&doc);
    let mut boxes = Vec::new();
    for n in root.descendants().filter(|n| n.has_tag_name("text")) {
        // The label itself, not its <title> tooltip.
        let text: String = n
            .children()
            .filter(|c| c.is_text())
            .filter_map(|c| c.text())
            .collect();
        let f = font_of(n, &rules);
        let (mut x, mut y): (f64, f64) = (
            n.attribute("x").unwrap().parse().unwrap(),
            n.attribute("y").unwrap().parse().unwrap(),
        );
        // The legend sits in a translated group.
        for a in n.ancestors() {
            if let Some(t) = a.attribute("transform") {
                let inner = t
                    .strip_prefix("translate(")
                    .and_then(|t| t.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("unexpected transform {t}"));
                let v: Vec<f64> = inner
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(|v| v.parse().unwrap())
                    .collect();
                x += v[0];
                y += v.get(1).copied().unwrap_or(0.0);
            }
        }
        let w = finrst::ladder::text_width(&text, f.px, f.mono, f.bold);
        let left = match f.anchor.as_str() {
            "start" => x,
            "middle" => x - w / 2.0,
            "end" => x - w,
            a => panic!("unexpected text-anchor {a}"),
        };
        // DejaVu's glyphs reach about 0.76 em above the baseline (capitals,
        // digits) and 0.24 em below it (g, p, y).
        boxes.push((left, y - 0.76 * f.px, left + w, y + 0.24 * f.px, text));
    }
    (vb[2], vb[3], boxes)
}

/// The ladders a reader sees: every scenario in `sim/`, on the model and
/// on smoltcp. Every one is well-formed XML, no label's estimated extent
/// (x with its width by the font, per its text-anchor) leaves the viewBox,
/// and no two labels overlap: in particular, a time at the left edge never
/// runs into the call or state label on its row.
#[test]
fn no_label_is_clipped_or_overlaps_another() {
    use finrst::EngineKind;
    use finrst::engine::RunOptions;
    let mut sims: Vec<_> = std::fs::read_dir("sim")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sim"))
        .collect();
    sims.sort();
    assert!(sims.len() > 20, "only {} scenarios in sim/", sims.len());
    let mut hand_built: Vec<(String, String)> = traces::all()
        .into_iter()
        .map(|(n, t)| (n.to_string(), render(&t)))
        .collect();
    let mut ladders = Vec::new();
    for p in &sims {
        for engine in [EngineKind::Model, EngineKind::Smoltcp] {
            let path = p.to_str().unwrap();
            let t = finrst::run_file(path, engine, &RunOptions::default())
                .unwrap_or_else(|e| panic!("{path}: {e:?}"));
            ladders.push((format!("{path} ({})", engine.name()), render(&t)));
        }
    }
    ladders.append(&mut hand_built);
    let mut problems = Vec::new();
    for (name, svg) in &ladders {
        let (w, h, boxes) = text_boxes(svg);
        for (l, t, r, b, text) in &boxes {
            if *l < 0.0 || *r > w || *t < 0.0 || *b > h {
                problems.push(format!(
                    "{name}: {text:?} spans x {l:.0}..{r:.0}, y {t:.0}..{b:.0}, outside 0 0 {w} {h}"
                ));
            }
        }
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                let dx = a.2.min(b.2) - a.0.max(b.0);
                let dy = a.3.min(b.3) - a.1.max(b.1);
                if dx > 0.0 && dy > 0.0 {
                    problems.push(format!("{name}: {:?} overlaps {:?}", a.4, b.4));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems in {} ladders:\n{}",
        problems.len(),
        ladders.len(),
        problems.join("\n")
    );
}
