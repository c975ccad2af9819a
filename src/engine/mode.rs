//! Where the SQL runs: the `--engine` / `[engine] mode` value and its parsing.

/// Where the SQL runs: `local`, `ballista://HOST:PORT` or `ballista-standalone`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum EngineMode {
    /// Embedded DataFusion in this process.
    #[default]
    Local,
    /// A Ballista scheduler started with `segvalue scheduler` (or any Ballista 55 scheduler).
    Ballista { host: String, port: u16 },
    /// A scheduler and one executor inside this process, for tests and demos.
    Standalone,
}

impl EngineMode {
    pub fn parse(s: &str) -> Result<EngineMode, String> {
        let bad = || format!("engine '{s}': expected local, ballista://HOST:PORT or ballista-standalone");
        match s {
            "local" => Ok(EngineMode::Local),
            "ballista-standalone" => Ok(EngineMode::Standalone),
            _ => {
                let rest = s.strip_prefix("ballista://").ok_or_else(bad)?;
                let (host, port) = parse_host_port(rest.trim_end_matches('/')).ok_or_else(bad)?;
                Ok(EngineMode::Ballista { host, port })
            }
        }
    }

    pub fn is_distributed(&self) -> bool {
        !matches!(self, EngineMode::Local)
    }
}

/// `HOST:PORT` with a non-empty host and a port from 1 to 65535.
pub fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    (!host.is_empty()).then(|| (host.to_string(), port))
}

impl std::fmt::Display for EngineMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineMode::Local => f.write_str("local"),
            EngineMode::Ballista { host, port } => write!(f, "ballista://{host}:{port}"),
            EngineMode::Standalone => f.write_str("ballista-standalone"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for EngineMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EngineMode::parse(&s).map_err(serde::de::Error::custom)
    }
}
