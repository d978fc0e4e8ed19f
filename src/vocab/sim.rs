//! The scenarios of `sim/` as a type: the enum is written by build.rs from
//! the directory's file names.

include!(concat!(env!("OUT_DIR"), "/sim.rs"));

impl std::fmt::Display for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Sim {
    type Err = super::UnknownName;
    fn from_str(s: &str) -> Result<Sim, Self::Err> {
        Sim::ALL
            .iter()
            .copied()
            .find(|x| x.name() == s)
            .ok_or_else(|| super::UnknownName {
                what: "a scenario of sim/",
                found: s.to_string(),
            })
    }
}

super::serde_by_name!(Sim);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_sim_is_a_variant() {
        let mut files: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/sim"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.strip_suffix(".sim").map(str::to_string)
            })
            .collect();
        files.sort();
        let names: Vec<&str> = Sim::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names, files);
        assert_eq!("close-unread-rst".parse::<Sim>(), Ok(Sim::CloseUnreadRst));
    }
}
