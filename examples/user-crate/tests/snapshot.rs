#[test]
fn the_trace_is_the_snapshot() {
    let t = finrst_user::second_request_reset().unwrap();
    assert!(t.failures.is_empty(), "{}", t.to_text());
    insta::assert_snapshot!(t.to_text());
}

#[test]
fn the_smoltcp_engine_is_not_compiled_in() {
    let s = finrst::Scenario::new("x").hosts(["a"]).build().unwrap();
    let e = finrst::run(&s, finrst::EngineKind::Smoltcp, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("built without the smoltcp engine"), "{e}");
}
