//! Distributions of handle times, patience and answer delays, by their mean
//! (the figure a planner knows) rather than by their textbook parameters.

use crate::error::{Error, Result};
use rand::Rng;
use rand_distr::{Distribution as _, Exp, Gamma, LogNormal, Uniform};
use serde::{Deserialize, Serialize};

/// Checks that `value` is finite and positive (or non-negative); the error
/// names `field` and says what was expected (`unit` follows "number").
pub(super) fn finite(field: &str, value: f64, positive: bool, unit: &str) -> Result<()> {
    let ok = value.is_finite() && if positive { value > 0.0 } else { value >= 0.0 };
    if ok {
        Ok(())
    } else {
        let what = if positive { "a positive" } else { "a non-negative" };
        Err(Error::config(field.to_owned(), format!("expected {what} finite number{unit}, got {value}")))
    }
}

/// A distribution of seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Always `value`.
    Constant { value: f64 },
    /// Exponential with this mean (memoryless; Erlang C and A assume it).
    Exponential { mean: f64 },
    /// Log-normal with this mean and standard deviation (handle times are often so).
    Lognormal { mean: f64, sd: f64 },
    /// Gamma with this mean and shape (shape 1 is exponential; larger is less variable).
    Gamma { mean: f64, shape: f64 },
    /// Uniform between `low` and `high`.
    Uniform { low: f64, high: f64 },
}

impl Distribution {
    /// Checks the parameters; `field` is the path used in the error.
    pub fn validate(&self, field: &str) -> Result<()> {
        let check = |name: &str, value: f64, positive: bool| finite(&format!("{field}.{name}"), value, positive, "");
        match *self {
            Distribution::Constant { value } => check("value", value, false),
            Distribution::Exponential { mean } => check("mean", mean, true),
            Distribution::Lognormal { mean, sd } => {
                check("mean", mean, true)?;
                check("sd", sd, true)
            }
            Distribution::Gamma { mean, shape } => {
                check("mean", mean, true)?;
                check("shape", shape, true)
            }
            Distribution::Uniform { low, high } => {
                check("low", low, false)?;
                check("high", high, false)?;
                if high < low {
                    return Err(Error::config(format!("{field}.high"), format!("{high} is below low ({low})")));
                }
                Ok(())
            }
        }
    }

    /// The mean, in seconds.
    #[must_use]
    pub fn mean(&self) -> f64 {
        match *self {
            Distribution::Constant { value } => value,
            Distribution::Exponential { mean }
            | Distribution::Lognormal { mean, .. }
            | Distribution::Gamma { mean, .. } => mean,
            Distribution::Uniform { low, high } => f64::midpoint(low, high),
        }
    }

    /// A sampler.
    ///
    /// # Panics
    /// If the distribution has not passed [`Self::validate`].
    #[must_use]
    pub fn sampler(&self) -> Sampler {
        match *self {
            Distribution::Constant { value } => Sampler::Constant(value),
            Distribution::Exponential { mean } => Sampler::Exp(Exp::new(1.0 / mean).expect("validated mean")),
            Distribution::Lognormal { mean, sd } => {
                let sigma2 = (1.0 + (sd * sd) / (mean * mean)).ln();
                let mu = mean.ln() - sigma2 / 2.0;
                Sampler::LogNormal(LogNormal::new(mu, sigma2.sqrt()).expect("validated mean and sd"))
            }
            Distribution::Gamma { mean, shape } => {
                Sampler::Gamma(Gamma::new(shape, mean / shape).expect("validated mean and shape"))
            }
            Distribution::Uniform { low, high } => {
                if high > low {
                    Sampler::Uniform(Uniform::new(low, high))
                } else {
                    Sampler::Constant(low)
                }
            }
        }
    }
}

/// A ready-to-draw distribution.
#[derive(Clone, Debug)]
pub enum Sampler {
    Constant(f64),
    Exp(Exp<f64>),
    LogNormal(LogNormal<f64>),
    Gamma(Gamma<f64>),
    Uniform(Uniform<f64>),
}

impl Sampler {
    /// One draw, in seconds.
    #[inline]
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            Sampler::Constant(v) => *v,
            Sampler::Exp(d) => d.sample(rng),
            Sampler::LogNormal(d) => d.sample(rng),
            Sampler::Gamma(d) => d.sample(rng),
            Sampler::Uniform(d) => d.sample(rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn every_distribution_has_the_mean_it_was_given() {
        let mut rng = Pcg64Mcg::seed_from_u64(5);
        for d in [
            Distribution::Constant { value: 30.0 },
            Distribution::Exponential { mean: 180.0 },
            Distribution::Lognormal { mean: 300.0, sd: 150.0 },
            Distribution::Gamma { mean: 240.0, shape: 3.0 },
            Distribution::Uniform { low: 10.0, high: 50.0 },
        ] {
            d.validate("d").unwrap();
            let s = d.sampler();
            let n = 200_000;
            let mean = (0..n).map(|_| s.draw(&mut rng)).sum::<f64>() / f64::from(n);
            assert!((mean - d.mean()).abs() < 0.01 * d.mean(), "{d:?}: sample mean {mean}");
        }
    }

    #[test]
    fn bad_parameters_name_the_field() {
        let e = Distribution::Exponential { mean: -1.0 }.validate("arrivals[0].handle").unwrap_err();
        assert!(e.to_string().contains("arrivals[0].handle.mean"), "{e}");
        let e = Distribution::Uniform { low: 5.0, high: 1.0 }.validate("x").unwrap_err();
        assert!(e.to_string().contains("x.high"), "{e}");
        let e = Distribution::Lognormal { mean: 10.0, sd: f64::NAN }.validate("x").unwrap_err();
        assert!(e.to_string().contains("x.sd"), "{e}");
    }
}
