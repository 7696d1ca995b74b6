//! Amounts in millisatoshi and the `amount_msat` grammar of the `invoice` command.
//!
//! Owns the parse of amount text: `any`, a whole number of msat, a whole number ending
//! `msat` or `sat`, a number with exactly three decimals ending `sat`, a whole number or a number
//! with 1 to 11 decimals ending `btc`. Nothing else is accepted: no trailing text after the unit,
//! no signs, spaces, exponents or upper-case units, no zero and nothing above 21,000,000 BTC.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

/// Millisatoshi per satoshi.
const MSAT_PER_SAT: u64 = 1_000;
/// Millisatoshi per bitcoin.
const MSAT_PER_BTC: u64 = 100_000_000_000;
/// Longest amount text looked at; anything longer is refused before parsing.
const MAX_INPUT_LEN: usize = 64;

/// A count of millisatoshi: what an invoice asks, a payment brings, a channel holds.
///
/// It keeps no invariant beyond being a count (what an invoice may ask is bounded where the
/// request is read: [`AmountOrAny`]'s grammar and the signer's limits), so decoding one can never
/// refuse what was once recorded. The codec writes it as the integer it is.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Msat(pub u64);

impl Msat {
    /// 21,000,000 BTC, the largest amount an invoice may ask for.
    pub const MAX: Msat = Msat(21_000_000 * MSAT_PER_BTC);

    /// Nothing.
    pub const ZERO: Msat = Msat(0);

    /// This many millisatoshi.
    pub const fn from_msat(msat: u64) -> Self {
        Msat(msat)
    }

    /// The amount in millisatoshi.
    pub const fn as_msat(self) -> u64 {
        self.0
    }

    /// The difference, or nothing when `other` is larger.
    #[must_use]
    pub fn saturating_sub(self, other: Msat) -> Msat {
        Msat(self.0.saturating_sub(other.0))
    }

    /// The one rule for what pays an invoice asking `asked` (Core Lightning's
    /// `invoice_check_payment`): at least the amount and at most twice it; anything for an
    /// `any` invoice.
    ///
    /// # Errors
    /// [`PaymentAmountError`] saying which bound `self` breaks.
    pub fn pays(self, asked: Option<Msat>) -> Result<(), PaymentAmountError> {
        match asked {
            Some(want) if self < want => Err(PaymentAmountError::Under { got: self, want }),
            Some(want) if self.0 > want.0.saturating_mul(2) => {
                Err(PaymentAmountError::Over { got: self, want })
            }
            _ => Ok(()),
        }
    }
}

/// A total that stops at `u64::MAX` msat rather than wrap (no real total comes near).
impl core::iter::Sum for Msat {
    fn sum<I: Iterator<Item = Msat>>(iter: I) -> Msat {
        Msat(iter.fold(0u64, |a, m| a.saturating_add(m.0)))
    }
}

impl fmt::Display for Msat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}msat", self.0)
    }
}

/// What an invoice asks for: a fixed amount or whatever the payer sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AmountOrAny {
    /// The payer chooses the amount (`"any"`).
    Any,
    /// A fixed amount.
    Fixed(Msat),
}

impl AmountOrAny {
    /// The fixed amount, or `None` for `any`.
    pub fn msat(self) -> Option<Msat> {
        match self {
            AmountOrAny::Any => None,
            AmountOrAny::Fixed(m) => Some(m),
        }
    }
}

impl fmt::Display for AmountOrAny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountOrAny::Any => f.write_str("any"),
            AmountOrAny::Fixed(m) => m.fmt(f),
        }
    }
}

/// Why an amount text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The text does not follow the grammar.
    #[error("not an amount")]
    Syntax,
    /// The amount is zero or above 21,000,000 BTC (or overflows).
    #[error("amount out of range")]
    OutOfRange,
}

impl FromStr for AmountOrAny {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "any" {
            return Ok(AmountOrAny::Any);
        }
        match parse_msat(s)? {
            0 => Err(AmountError::OutOfRange),
            m if m > Msat::MAX.0 => Err(AmountError::OutOfRange),
            m => Ok(AmountOrAny::Fixed(Msat(m))),
        }
    }
}

/// Splits `s` into a leading run of ASCII digits and the rest.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    s.split_at(end)
}

fn digits_to_u64(d: &str) -> Result<u64, AmountError> {
    // Only ever called with a non-empty run of ASCII digits, so the one failure is overflow.
    d.parse::<u64>().map_err(|_| AmountError::OutOfRange)
}

/// Parses the amount grammar into msat (zero allowed here; the caller bounds it).
fn parse_msat(s: &str) -> Result<u64, AmountError> {
    if s.len() > MAX_INPUT_LEN {
        return Err(AmountError::Syntax);
    }
    let (whole, rest) = split_digits(s);
    if whole.is_empty() {
        return Err(AmountError::Syntax);
    }
    let whole_v = digits_to_u64(whole)?;
    let (frac, unit) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let (frac, unit) = split_digits(after_dot);
            if frac.is_empty() {
                return Err(AmountError::Syntax);
            }
            (Some(frac), unit)
        }
        None => (None, rest),
    };
    let scaled = |per_unit: u64, frac: &str, max_decimals: usize| -> Result<u64, AmountError> {
        let base = whole_v
            .checked_mul(per_unit)
            .ok_or(AmountError::OutOfRange)?;
        // frac has at most max_decimals (<= 11) digits, so it fits.
        let frac_v = digits_to_u64(frac)?;
        let frac_scale = 10u64.pow((max_decimals - frac.len()) as u32);
        base.checked_add(frac_v * frac_scale)
            .ok_or(AmountError::OutOfRange)
    };
    match (unit, frac) {
        ("" | "msat", None) => Ok(whole_v),
        ("sat", None) => whole_v
            .checked_mul(MSAT_PER_SAT)
            .ok_or(AmountError::OutOfRange),
        ("sat", Some(f)) if f.len() == 3 => scaled(MSAT_PER_SAT, f, 3),
        ("btc", None) => whole_v
            .checked_mul(MSAT_PER_BTC)
            .ok_or(AmountError::OutOfRange),
        ("btc", Some(f)) if f.len() <= 11 => scaled(MSAT_PER_BTC, f, 11),
        _ => Err(AmountError::Syntax),
    }
}

/// Why a payment's amount does not pay an invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PaymentAmountError {
    /// Less than the invoice asks.
    #[error("{got} is less than the invoice's {want}")]
    Under {
        /// Offered.
        got: Msat,
        /// Asked.
        want: Msat,
    },
    /// More than twice the invoice's amount.
    #[error("{got} is more than twice the invoice's {want}")]
    Over {
        /// Offered.
        got: Msat,
        /// Asked.
        want: Msat,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_is_at_least_the_amount_and_at_most_twice_it() {
        let m = Msat::from_msat;
        assert_eq!(
            m(999).pays(Some(m(1000))),
            Err(PaymentAmountError::Under {
                got: m(999),
                want: m(1000)
            })
        );
        assert_eq!(m(1000).pays(Some(m(1000))), Ok(()));
        assert_eq!(m(2000).pays(Some(m(1000))), Ok(()));
        assert_eq!(
            m(2001).pays(Some(m(1000))),
            Err(PaymentAmountError::Over {
                got: m(2001),
                want: m(1000)
            })
        );
        assert_eq!(m(u64::MAX).pays(Some(m(u64::MAX))), Ok(()), "no overflow");
        assert_eq!(m(1).pays(None), Ok(()), "any");
    }
    use proptest::prelude::*;

    fn msat(s: &str) -> Option<u64> {
        s.parse::<AmountOrAny>()
            .ok()
            .and_then(AmountOrAny::msat)
            .map(Msat::as_msat)
    }

    #[test]
    fn accepts_every_form_of_the_grammar() {
        let cases = [
            ("1", 1),
            ("000123", 123),
            ("1msat", 1),
            ("1sat", 1_000),
            ("10.001sat", 10_001),
            ("1.500sat", 1_500),
            ("0.001sat", 1),
            ("0.00000001btc", 1_000),
            ("0.00000000001btc", 1),
            ("1.2btc", 120_000_000_000),
            ("1.23456789012btc", 123_456_789_012),
            ("1.234567890btc", 123_456_789_000),
            ("1btc", 100_000_000_000),
            ("21000000btc", 2_100_000_000_000_000_000),
            ("2100000000000000sat", 2_100_000_000_000_000_000),
        ];
        for (text, want) in cases {
            assert_eq!(msat(text), Some(want), "{text}");
        }
        assert_eq!("any".parse::<AmountOrAny>(), Ok(AmountOrAny::Any));
    }

    #[test]
    fn refuses_everything_else() {
        for text in [
            "",
            "0",
            "0msat",
            "0sat",
            "0.000sat",
            "0.00000000btc",
            "0.00000000000btc",
            "-1",
            "-1sat",
            "x",
            "x100",
            "0.0",
            "1.5",
            "1.",
            "1.btc",
            ".5btc",
            "1.5sat",
            "1.0sat",
            "1.5msat",
            "0.1msat",
            "1.000000000000btc",
            "0.000000000001btc",
            "1e3",
            "1000.0",
            "100 sat",
            " 100",
            "100SAT",
            "100BTC",
            "ANY",
            "Any",
            "any ",
            "10sats",
            "1satoshi",
            "5msatxyz",
            "1btcfoo",
            "0x10",
            "1_000",
            "+5",
            "21000000.00000000001btc",
            "21000001btc",
            "18446744073709551615",
            "18446744073709551616",
            "21000000000000000000000000.00000000btc",
        ] {
            assert!(
                text.parse::<AmountOrAny>().is_err(),
                "{text:?} should be refused"
            );
        }
    }

    proptest! {
        #[test]
        fn sat_is_a_thousand_msat(n in 1u64..=2_100_000_000_000_000) {
            prop_assert_eq!(msat(&format!("{n}sat")), Some(n * 1000));
            prop_assert_eq!(msat(&format!("{}msat", n * 1000)), Some(n * 1000));
        }

        #[test]
        fn display_round_trips(n in 1u64..=Msat::MAX.as_msat()) {
            let a = AmountOrAny::Fixed(Msat::from_msat(n));
            prop_assert_eq!(a.to_string().parse::<AmountOrAny>(), Ok(a));
        }

        #[test]
        fn btc_decimals_match_msat(whole in 0u64..21_000_000, frac in 0u64..100_000_000_000) {
            let text = format!("{whole}.{frac:011}btc");
            let want = whole * 100_000_000_000 + frac;
            prop_assert_eq!(msat(&text), if want == 0 { None } else { Some(want) });
            let twelve = format!("{whole}.{frac:011}0btc");
            prop_assert!(twelve.parse::<AmountOrAny>().is_err());
        }

        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = s.parse::<AmountOrAny>();
        }
    }
}
