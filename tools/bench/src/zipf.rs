//! Symbol popularity with a Zipf (s = 1) skew: rank k is drawn with
//! probability proportional to 1/k, like interest in instruments on a desk.

use rand::Rng;

/// Draws symbol indices with probability proportional to 1/rank.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// Ranks 1..=n.
    pub fn new(n: usize) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                acc += 1.0 / k as f64;
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    /// A rank, counted from 0.
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn zipf_prefers_low_ranks() {
        let z = Zipf::new(200);
        let mut rng = StdRng::seed_from_u64(1);
        let first = (0..10_000).filter(|_| z.sample(&mut rng) == 0).count();
        // P(rank 1) = 1/H(200) ≈ 0.171.
        assert!((1_400..2_000).contains(&first), "{first}");
    }
}
