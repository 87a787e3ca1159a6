//! Number formatting shared by the summary, the progress lines and the sweep's page.
//!
//! Contract: pure functions; "-" stands for a value that cannot be shown (no baseline,
//! not finite).

/// 1234567.8 → "1,234,568".
pub fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "-".into();
    }
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Milliseconds with sensible precision: "0.84 ms", "12.3 ms", "250 ms".
pub fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else if value < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

pub(crate) fn opt<T: Copy>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map_or_else(|| "-".into(), show)
}

/// `value` as a percentage of `base` ("81%"), or "-".
pub fn pct_of(value: f64, base: Option<f64>) -> String {
    opt(base.filter(|b| *b > 0.0), |b| {
        format!("{:.0}%", 100.0 * value / b)
    })
}

/// `value` as a multiple of `base` ("27.1x"), or "-".
pub fn times(value: f64, base: Option<f64>) -> String {
    opt(base.filter(|b| *b > 0.0), |b| format!("{:.1}x", value / b))
}

/// `value / base` when the base is known and positive.
pub fn ratio(value: f64, base: Option<f64>) -> Option<f64> {
    base.filter(|b| *b > 0.0).map(|b| value / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(thousands(-4321.0), "-4,321");
        assert_eq!(thousands(f64::NAN), "-");
    }

    #[test]
    fn milliseconds_precision() {
        assert_eq!(ms(0.8412), "0.84 ms");
        assert_eq!(ms(12.34), "12.3 ms");
        assert_eq!(ms(250.4), "250 ms");
    }

    #[test]
    fn ratios() {
        assert_eq!(pct_of(40_000.0, Some(50_000.0)), "80%");
        assert_eq!(times(50_000.0, Some(2_000.0)), "25.0x");
        assert_eq!(times(1.0, None), "-");
        assert_eq!(pct_of(1.0, Some(0.0)), "-");
    }
}
