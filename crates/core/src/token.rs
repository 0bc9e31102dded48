//! The native token: amounts, decimals and their printable form.
//!
//! One POI is `10^DECIMALS` base units. All on-chain amounts are `u128` base units; the largest
//! representable supply is about 3.4 * 10^29 POI, far above any genesis we would configure.
//!
//! Stability: BETA.

/// An amount of the native token in base units.
pub type Amount = u128;

/// Decimal places of one POI: 1 POI = 1_000_000_000 base units (like gwei, "nano").
pub const DECIMALS: u32 = 9;

/// Base units in one POI.
pub const BASE_UNITS_PER_POI: Amount = 1_000_000_000;

const _: () = assert!(BASE_UNITS_PER_POI == 10u128.pow(DECIMALS));

/// Formats base units as a decimal POI amount without losing precision, e.g. `1.5 POI`.
pub fn format_poi(amount: Amount) -> String {
    let whole = amount / BASE_UNITS_PER_POI;
    let frac = amount % BASE_UNITS_PER_POI;
    if frac == 0 {
        return format!("{whole} POI");
    }
    let digits = format!("{frac:0width$}", width = DECIMALS as usize);
    format!("{whole}.{} POI", digits.trim_end_matches('0'))
}

/// Why a printed amount could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountParseError {
    /// The text is not a number in a form we accept.
    #[error("invalid amount {0:?}: expected base units like 1500 or POI like 1.5poi")]
    Invalid(String),
    /// More than [`DECIMALS`] fractional digits: the amount is finer than one base unit.
    #[error("invalid amount {0:?}: POI amounts have at most 9 decimal places")]
    TooPrecise(String),
    /// The amount does not fit in `u128` base units.
    #[error("amount {0:?} is too large")]
    Overflow(String),
}

/// Parses `1500` (base units) or `1.5poi` / `1.5 POI` (whole tokens).
pub fn parse_amount(text: &str) -> Result<Amount, AmountParseError> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let invalid = || AmountParseError::Invalid(text.to_string());
    if let Some(poi) = lower.strip_suffix("poi") {
        let poi = poi.trim();
        let (whole, frac) = poi.split_once('.').unwrap_or((poi, ""));
        if whole.is_empty() || !all_digits(whole) || !all_digits(frac) {
            return Err(invalid());
        }
        if frac.len() > DECIMALS as usize {
            return Err(AmountParseError::TooPrecise(text.to_string()));
        }
        let overflow = || AmountParseError::Overflow(text.to_string());
        let whole: Amount = whole.parse().map_err(|_| overflow())?;
        let frac_units: Amount = if frac.is_empty() {
            0
        } else {
            let padded = format!("{frac:0<width$}", width = DECIMALS as usize);
            padded.parse().map_err(|_| invalid())?
        };
        return whole
            .checked_mul(BASE_UNITS_PER_POI)
            .and_then(|w| w.checked_add(frac_units))
            .ok_or_else(overflow);
    }
    if trimmed.is_empty() || !all_digits(trimmed) {
        return Err(invalid());
    }
    trimmed
        .parse()
        .map_err(|_| AmountParseError::Overflow(text.to_string()))
}

fn all_digits(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_units_and_poi() {
        assert_eq!(parse_amount("1500"), Ok(1500));
        assert_eq!(parse_amount("1.5poi"), Ok(1_500_000_000));
        assert_eq!(parse_amount("2 POI"), Ok(2_000_000_000));
        assert_eq!(parse_amount("0.000000001poi"), Ok(1));
        assert!(matches!(
            parse_amount("0.0000000001poi"),
            Err(AmountParseError::TooPrecise(_))
        ));
        assert!(matches!(
            parse_amount("-1"),
            Err(AmountParseError::Invalid(_))
        ));
        assert!(matches!(
            parse_amount(""),
            Err(AmountParseError::Invalid(_))
        ));
        assert!(matches!(
            parse_amount("1e5"),
            Err(AmountParseError::Invalid(_))
        ));
        let too_big = format!("{}0", u128::MAX);
        assert!(matches!(
            parse_amount(&too_big),
            Err(AmountParseError::Overflow(_))
        ));
    }

    #[test]
    fn formats_without_losing_units() {
        assert_eq!(format_poi(1_500_000_000), "1.5 POI");
        assert_eq!(format_poi(1), "0.000000001 POI");
        assert_eq!(format_poi(7 * BASE_UNITS_PER_POI), "7 POI");
        for amount in [0u128, 1, 999_999_999, 1_000_000_001, u128::MAX] {
            let printed = format_poi(amount).replace(' ', "");
            assert_eq!(parse_amount(&printed), Ok(amount));
        }
    }
}
