//! Protocol version negotiation (PROTOCOL §2.3).

use serde_json::json;

use super::errors::{code, ErrorShape};
use super::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

/// Picks the protocol for a client offering `min..=max`: any range that intersects
/// `[3, 4]` is accepted and answered with `min(max, 4)`. Otherwise the `PROTOCOL_MISMATCH`
/// error (the caller closes with 1002 "protocol mismatch").
pub fn negotiate(min: u64, max: u64) -> Result<u32, ErrorShape> {
    let ours_min = u64::from(MIN_PROTOCOL_VERSION);
    let ours_max = u64::from(PROTOCOL_VERSION);
    if min <= max && min <= ours_max && max >= ours_min {
        Ok(max.min(ours_max) as u32)
    } else {
        Err(mismatch(min, max))
    }
}

fn mismatch(min: u64, max: u64) -> ErrorShape {
    ErrorShape::new(code::INVALID_REQUEST, "protocol mismatch").with_details(json!({
        "code": "PROTOCOL_MISMATCH",
        "clientMinProtocol": min,
        "clientMaxProtocol": max,
        "expectedProtocol": PROTOCOL_VERSION,
        "minimumProbeProtocol": MIN_PROTOCOL_VERSION,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(u64, u64, Option<u32>)] = &[
            (4, 4, Some(4)),
            (3, 4, Some(4)),
            (3, 3, Some(3)),
            (1, 3, Some(3)),
            (3, 9, Some(4)),
            (4, 9, Some(4)),
            (1, 2, None),
            (5, 5, None),
            (5, 9, None),
            (4, 3, None),
        ];
        for &(min, max, want) in cases {
            assert_eq!(negotiate(min, max).ok(), want, "{min}..{max}");
        }
        let e = negotiate(5, 5).unwrap_err();
        assert_eq!(e.message, "protocol mismatch");
        assert_eq!(e.details.unwrap()["expectedProtocol"], 4);
    }
}
