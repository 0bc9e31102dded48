//! How an agent behaves: honestly, or cheating in one chosen way (for tests and the devnet).
//! Parsed from the strings the CLI's `--behaviour` takes.

use std::fmt;
use std::str::FromStr;

use crate::AgentError;

/// What a provider does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderBehaviour {
    /// Trains every step, commits and serves what it computed.
    #[default]
    Honest,
    /// For the given fraction (bps) of segments, chosen from the job id, commits step
    /// digests it did not compute: every leaf of the segment but its last is perturbed (the
    /// root is built over the perturbed leaves, so proofs stay consistent). The segment's end
    /// leaf stays true so the next checkpoint still matches.
    FakeSegments {
        /// Basis points of segments faked (1..=10,000).
        bps: u32,
    },
    /// Skips every second optimizer step but commits digests as if it ran them (each
    /// claimed digest is of the state it actually holds, under the claimed step number).
    SkipSteps,
    /// Serves a checkpoint other than the one asked for (it fails the leaf proof).
    WrongCheckpoint,
    /// Answers checkpoint requests with 404.
    WithholdCheckpoint,
    /// Commits and serves a wrong output for every inference request.
    WrongInference,
    /// Trains honestly but claims half its measured eval score (a better model than it has).
    ForgeScore,
}

impl ProviderBehaviour {
    /// The names the parser accepts.
    pub const NAMES: &'static str = "honest, fake-segments=<bps>, skip-steps, wrong-checkpoint, withhold-checkpoint, wrong-inference, forge-score";
}

impl FromStr for ProviderBehaviour {
    type Err = AgentError;

    fn from_str(text: &str) -> Result<Self, AgentError> {
        let bad = |reason: String| AgentError::Behaviour {
            text: text.to_owned(),
            reason,
        };
        if let Some(bps) = text.strip_prefix("fake-segments=") {
            let bps: u32 = bps
                .parse()
                .map_err(|_| bad(format!("{bps:?} is not basis points")))?;
            if !(1..=10_000).contains(&bps) {
                return Err(bad(format!("{bps} bps is not in 1..=10000")));
            }
            return Ok(Self::FakeSegments { bps });
        }
        Ok(match text {
            "honest" => Self::Honest,
            "skip-steps" => Self::SkipSteps,
            "wrong-checkpoint" => Self::WrongCheckpoint,
            "withhold-checkpoint" => Self::WithholdCheckpoint,
            "wrong-inference" => Self::WrongInference,
            "forge-score" => Self::ForgeScore,
            _ => return Err(bad(format!("one of {}", Self::NAMES))),
        })
    }
}

impl fmt::Display for ProviderBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Honest => f.write_str("honest"),
            Self::FakeSegments { bps } => write!(f, "fake-segments={bps}"),
            Self::SkipSteps => f.write_str("skip-steps"),
            Self::WrongCheckpoint => f.write_str("wrong-checkpoint"),
            Self::WithholdCheckpoint => f.write_str("withhold-checkpoint"),
            Self::WrongInference => f.write_str("wrong-inference"),
            Self::ForgeScore => f.write_str("forge-score"),
        }
    }
}

/// What a validator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValidatorBehaviour {
    /// Fetches, verifies and re-executes every check; attests what it found.
    #[default]
    Honest,
    /// Attests `match` without re-executing, copying the provider's served digest at the
    /// segment's end (caught only by canaries, a later build step).
    Lazy,
    /// Attests `mismatch` at the subject's first step, whatever the work.
    Contrarian,
}

impl ValidatorBehaviour {
    /// The names the parser accepts.
    pub const NAMES: &'static str = "honest, lazy, contrarian";
}

impl FromStr for ValidatorBehaviour {
    type Err = AgentError;

    fn from_str(text: &str) -> Result<Self, AgentError> {
        Ok(match text {
            "honest" => Self::Honest,
            "lazy" => Self::Lazy,
            "contrarian" => Self::Contrarian,
            _ => {
                return Err(AgentError::Behaviour {
                    text: text.to_owned(),
                    reason: format!("one of {}", Self::NAMES),
                });
            }
        })
    }
}

impl fmt::Display for ValidatorBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Honest => "honest",
            Self::Lazy => "lazy",
            Self::Contrarian => "contrarian",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_parse_and_print_back() {
        for text in [
            "honest",
            "fake-segments=500",
            "skip-steps",
            "wrong-checkpoint",
            "withhold-checkpoint",
            "wrong-inference",
            "forge-score",
        ] {
            let b: ProviderBehaviour = text.parse().expect(text);
            assert_eq!(b.to_string(), text);
        }
        for text in ["honest", "lazy", "contrarian"] {
            let b: ValidatorBehaviour = text.parse().expect(text);
            assert_eq!(b.to_string(), text);
        }
        for bad in [
            "",
            "fake-segments=0",
            "fake-segments=10001",
            "fake-segments=x",
            "evil",
        ] {
            assert!(bad.parse::<ProviderBehaviour>().is_err(), "{bad}");
        }
        assert!("sloppy".parse::<ValidatorBehaviour>().is_err());
    }
}
