//! The model engine (being written).
use crate::engine::*;
use crate::script::{Call, Fault};
use crate::segment::Segment;
use std::collections::BTreeMap;

pub struct ModelEngine {
    segs: Vec<Segment>,
}

impl ModelEngine {
    pub fn new(_hosts: &[HostSpec], _opts: &RunOptions) -> Self {
        ModelEngine { segs: Vec::new() }
    }
}

impl Engine for ModelEngine {
    fn name(&self) -> &'static str {
        "model"
    }
    fn now_us(&self) -> u64 {
        0
    }
    fn sysctl(&mut self, _h: usize, _k: &str, _v: &str) -> Result<(), EngineError> {
        Ok(())
    }
    fn call(&mut self, _h: usize, _s: &str, _c: &Call, _x: &CallCtx) -> CallOutcome {
        CallOutcome::err("EINVAL")
    }
    fn fault(&mut self, _h: usize, _f: &Fault) -> Result<(), EngineError> {
        Ok(())
    }
    fn release(&mut self, _h: usize) -> Result<(), EngineError> {
        Ok(())
    }
    fn settle(&mut self) {}
    fn wait(&mut self, _us: u64) {}
    fn state(&mut self, _h: usize, _s: &str) -> Option<String> {
        None
    }
    fn counters(&mut self, _h: usize) -> BTreeMap<String, i64> {
        BTreeMap::new()
    }
    fn segments(&self) -> &[Segment] {
        &self.segs
    }
    fn finish(&mut self, _h: u64) -> Finish {
        Finish::default()
    }
}
