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
