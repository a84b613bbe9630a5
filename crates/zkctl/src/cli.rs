//! Argument parsing and exit codes.

use std::time::Duration;

/// Exit codes, documented in `zkctl --help`.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The operation failed (no node, node exists, bad version, ...).
    pub const FAILED: u8 = 1;
    /// Bad usage.
    pub const USAGE: u8 = 2;
    /// Not acquired within the timeout (lock, semaphore, lease, queue get, barrier wait).
    pub const NOT_ACQUIRED: u8 = 3;
    /// Could not connect to the ensemble.
    pub const CONNECTION: u8 = 4;
    /// The session was lost (expired) while holding or running.
    pub const SESSION_LOST: u8 = 5;
}

/// A failure with its exit code and one line for stderr.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// The message.
    pub message: String,
}

impl Failure {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    /// A failed operation.
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::FAILED,
            message: message.into(),
        }
    }
}

/// Prefix a ZooKeeper error with what was being done (`get /x: no node`), keeping its exit
/// code.
pub trait Context<T> {
    /// The error as a [`Failure`] whose message starts with `what`.
    fn at(self, what: &str) -> Result<T, Failure>;
}

impl<T> Context<T> for Result<T, zk_session::Error> {
    fn at(self, what: &str) -> Result<T, Failure> {
        self.map_err(|e| {
            let mut f = Failure::from(e);
            f.message = format!("{what}: {}", f.message);
            f
        })
    }
}

impl From<zk_session::Error> for Failure {
    fn from(e: zk_session::Error) -> Failure {
        use zk_session::Error as E;
        let code = match e {
            E::SessionExpired => exit::SESSION_LOST,
            E::ConnectionLoss | E::Timeout => exit::CONNECTION,
            E::InvalidPath { .. } | E::InvalidUse(_) => exit::USAGE,
            _ => exit::FAILED,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// Parse `10s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, Failure> {
    let bad = || Failure::usage(format!("invalid duration {s:?} (e.g. 500ms, 10s, 2m)"));
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The words after the command, with `--flag value` options pulled out.
#[derive(Debug, Default)]
pub struct Args {
    /// Positional words.
    pub positional: Vec<String>,
    /// `--name value` and `--name` (value empty) options, in order.
    pub options: Vec<(String, Option<String>)>,
    /// Everything after `--`.
    pub command: Vec<String>,
    /// An option given last without its value (reported by [`Args::only`], after unknown
    /// options, so `--bogus` is reported as unknown rather than as missing a value).
    missing_value: Option<String>,
}

impl Args {
    /// Split `words`; `flags` lists the options that take no value.
    pub fn parse(words: &[String], flags: &[&str]) -> Result<Args, Failure> {
        let mut a = Args::default();
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            if w == "--" {
                a.command = words[i + 1..].to_vec();
                break;
            }
            // `-s` is a short option; `-5` (a negative number, e.g. `counter add P -5`) and
            // `-` are positional.
            let short = w.len() == 2 && w.starts_with('-') && w.as_bytes()[1].is_ascii_alphabetic();
            if let Some(name) = w.strip_prefix("--").or_else(|| short.then(|| &w[1..])) {
                if flags.contains(&name) {
                    a.options.push((name.to_owned(), None));
                } else if let Some(v) = words.get(i + 1) {
                    a.options.push((name.to_owned(), Some(v.clone())));
                    i += 1;
                } else {
                    a.options.push((name.to_owned(), None));
                    a.missing_value = Some(name.to_owned());
                }
            } else {
                a.positional.push(w.clone());
            }
            i += 1;
        }
        Ok(a)
    }

    /// Whether a flag is present.
    pub fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }

    /// The last value of an option.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Refuse options not in `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), Failure> {
        for (n, _) in &self.options {
            if !known.contains(&n.as_str()) {
                return Err(Failure::usage(format!("unknown option --{n}")));
            }
        }
        match &self.missing_value {
            Some(n) => Err(Failure::usage(format!("--{n} needs a value"))),
            None => Ok(()),
        }
    }

    /// Positional `i`, or a usage error naming it.
    pub fn arg(&self, i: usize, what: &str) -> Result<&str, Failure> {
        self.positional
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| Failure::usage(format!("missing {what}")))
    }

    /// A duration option.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, Failure> {
        self.value(name).map(parse_duration).transpose()
    }

    /// An integer option.
    pub fn int<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Failure> {
        self.value(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| Failure::usage(format!("--{name}: invalid number {v:?}")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn options_and_command() {
        let w: Vec<String> = ["/a", "--timeout", "5s", "-s", "--", "echo", "--x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let a = Args::parse(&w, &["s"]).unwrap();
        assert_eq!(a.positional, ["/a"]);
        assert!(a.flag("s"));
        assert_eq!(a.value("timeout"), Some("5s"));
        assert_eq!(a.command, ["echo", "--x"]);
        assert!(a.only(&["timeout"]).is_err());
    }

    #[test]
    fn negative_numbers_are_positional_and_missing_values_reported() {
        let w: Vec<String> = ["add", "/c", "-5", "-"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let a = Args::parse(&w, &[]).unwrap();
        assert_eq!(a.positional, ["add", "/c", "-5", "-"]);
        assert!(a.options.is_empty());

        let w: Vec<String> = ["/a", "--bogus"].iter().map(|s| s.to_string()).collect();
        let a = Args::parse(&w, &[]).unwrap();
        let e = a.only(&["timeout"]).unwrap_err();
        assert_eq!(e.message, "unknown option --bogus");
        let w: Vec<String> = ["/a", "--timeout"].iter().map(|s| s.to_string()).collect();
        let a = Args::parse(&w, &[]).unwrap();
        assert_eq!(
            a.only(&["timeout"]).unwrap_err().message,
            "--timeout needs a value"
        );
    }
}
