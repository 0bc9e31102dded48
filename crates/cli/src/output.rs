//! Printing: human text by default, JSON with --json.

use serde_json::Value;

/// Prints `value` as pretty JSON.
pub(crate) fn json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Formats a decimal base-unit string as POI too, e.g. `1500000000 (1.5 POI)`.
pub(crate) fn amount(base_units: &Value) -> String {
    let text = base_units.as_str().unwrap_or("0");
    match text.parse::<u128>() {
        Ok(units) => format!("{units} ({})", poi_core::token::format_poi(units)),
        Err(_) => text.to_string(),
    }
}
