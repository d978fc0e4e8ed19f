//! Same script and seed ⇒ byte-identical output; the seed really reaches
//! smoltcp (a different seed gives different ISNs on the wire).

use super::run_smol;
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smol");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sim"))
        .collect();
    v.sort();
    v
}

#[test]
fn same_seed_gives_identical_json_and_bytes() {
    let fx = fixtures();
    assert!(fx.len() >= 2, "fixtures missing");
    for p in fx {
        let a = run_smol(&p, 7);
        let b = run_smol(&p, 7);
        assert_eq!(a.to_json(), b.to_json(), "{}", p.display());
        assert_eq!(a.to_text(), b.to_text(), "{}", p.display());
        // Absolute sequence numbers and payloads too, not only the
        // relative view the JSON shows.
        let raw = |t: &finrst::trace::Trace| -> Vec<Vec<u8>> {
            t.segments.iter().map(|s| s.encode_ipv4()).collect()
        };
        assert_eq!(raw(&a), raw(&b), "{}", p.display());
    }
}

#[test]
fn the_seed_reaches_smoltcps_isns() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smol/unread-close-fin.sim");
    let isns = |seed| -> Vec<u32> {
        run_smol(&p, seed)
            .segments
            .iter()
            .filter(|s| s.flags.syn())
            .map(|s| s.seq)
            .collect()
    };
    let (a, b) = (isns(1), isns(2));
    assert_eq!(a.len(), 2, "a SYN and a SYN-ACK");
    assert_ne!(a, b, "seed 1 and 2 drew the same ISNs");
    assert_ne!(a[0], a[1], "both hosts drew the same ISN");
}

#[test]
fn every_captured_frame_has_valid_checksums() {
    // The engine checks the bytes smoltcp put on the wire and notes any
    // frame whose IP or TCP checksum does not verify.
    for p in fixtures() {
        let t = run_smol(&p, 3);
        assert!(
            !t.notes.iter().any(|n| n.contains("checksum")),
            "{}: {:?}",
            p.display(),
            t.notes
        );
        assert!(!t.segments.is_empty(), "{}: nothing captured", p.display());
    }
}
