//! Event keys and payloads.
//!
//! Contract: [`KeySampler::index`] draws a key index in `0..keys`: uniformly, or zipf
//! (rank `r`, 0-based, drawn with probability proportional to `1/(r+1)^s`) by binary
//! search in a precomputed cumulative table (8 bytes per key). Key `i` is named `k{i}`;
//! PostgreSQL hashes names into slots, so hot ranks land on arbitrary slots. Payloads
//! are random bytes (incompressible: the worst case for `lz4`/`zstd`).

use rand::Rng;

/// How keys are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDist {
    Uniform,
    Zipf { exponent: f64 },
}

impl std::fmt::Display for KeyDist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyDist::Uniform => write!(f, "uniform"),
            KeyDist::Zipf { exponent } => write!(f, "zipf(s={exponent})"),
        }
    }
}

/// Draws key indices; cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct KeySampler {
    keys: usize,
    /// Zipf only: `cdf[r]` = P(rank <= r); the last entry is 1.
    cdf: Option<Vec<f64>>,
}

impl KeySampler {
    /// `keys` must be at least 1.
    pub fn new(dist: KeyDist, keys: usize) -> Self {
        let keys = keys.max(1);
        let cdf = match dist {
            KeyDist::Uniform => None,
            KeyDist::Zipf { exponent } => {
                let mut cdf = Vec::with_capacity(keys);
                let mut total = 0.0;
                for rank in 0..keys {
                    total += 1.0 / ((rank + 1) as f64).powf(exponent);
                    cdf.push(total);
                }
                for c in &mut cdf {
                    *c /= total;
                }
                if let Some(last) = cdf.last_mut() {
                    *last = 1.0;
                }
                Some(cdf)
            }
        };
        KeySampler { keys, cdf }
    }

    pub fn keys(&self) -> usize {
        self.keys
    }

    pub fn index<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        match &self.cdf {
            None => rng.gen_range(0..self.keys),
            Some(cdf) => {
                let u: f64 = rng.gen();
                cdf.partition_point(|&c| c <= u).min(self.keys - 1)
            }
        }
    }

    /// A key index reserved for lane `lane` of `lanes`: keeps the shape of the
    /// distribution while concurrent fill connections never share a key (so they never
    /// wait on each other's per-key lock).
    pub fn index_in_lane<R: Rng + ?Sized>(&self, rng: &mut R, lane: usize, lanes: usize) -> usize {
        let lanes = lanes.max(1);
        let index = self.index(rng);
        let candidate = (index / lanes) * lanes + lane % lanes;
        if candidate < self.keys {
            candidate
        } else {
            // The last, partial group of indices: fall back into the lane's last full one.
            candidate.saturating_sub(lanes).min(self.keys - 1)
        }
    }
}

pub fn key_name(index: usize) -> String {
    format!("k{index}")
}

/// A pool of random payloads reused round-robin (generating one per event would cost
/// more than the send being measured).
#[derive(Debug, Clone)]
pub struct PayloadPool {
    payloads: Vec<Vec<u8>>,
}

impl PayloadPool {
    pub fn new(bytes: usize, count: usize) -> Self {
        let mut rng = rand::thread_rng();
        let payloads = (0..count.max(1))
            .map(|_| {
                let mut payload = vec![0u8; bytes];
                rng.fill(payload.as_mut_slice());
                payload
            })
            .collect();
        PayloadPool { payloads }
    }

    pub fn get(&self, n: u64) -> &[u8] {
        &self.payloads[(n % self.payloads.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn counts(sampler: &KeySampler, draws: usize) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0usize; sampler.keys()];
        for _ in 0..draws {
            counts[sampler.index(&mut rng)] += 1;
        }
        counts
    }

    #[test]
    fn uniform_covers_every_key_about_evenly() {
        let sampler = KeySampler::new(KeyDist::Uniform, 100);
        let counts = counts(&sampler, 100_000);
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn zipf_follows_one_over_rank() {
        let keys = 1000;
        let sampler = KeySampler::new(KeyDist::Zipf { exponent: 1.0 }, keys);
        let draws = 200_000;
        let counts = counts(&sampler, draws);
        let harmonic: f64 = (1..=keys).map(|r| 1.0 / r as f64).sum();
        // Rank 0 gets 1/H(n) of the draws, rank 1 half of that, rank 9 a tenth.
        for (rank, expected_share) in [
            (0usize, 1.0 / harmonic),
            (1, 0.5 / harmonic),
            (9, 0.1 / harmonic),
        ] {
            let share = counts[rank] as f64 / draws as f64;
            assert!(
                (share - expected_share).abs() < expected_share * 0.1,
                "rank {rank}: {share} vs {expected_share}"
            );
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]);
        assert_eq!(counts.iter().sum::<usize>(), draws);
    }

    #[test]
    fn higher_exponent_is_more_skewed() {
        let mild = counts(
            &KeySampler::new(KeyDist::Zipf { exponent: 0.8 }, 1000),
            50_000,
        );
        let steep = counts(
            &KeySampler::new(KeyDist::Zipf { exponent: 1.5 }, 1000),
            50_000,
        );
        assert!(steep[0] > mild[0] * 2);
    }

    #[test]
    fn lanes_never_share_a_key_and_stay_in_range() {
        let sampler = KeySampler::new(KeyDist::Zipf { exponent: 1.0 }, 103);
        let mut rng = StdRng::seed_from_u64(1);
        for lane in 0..4 {
            for _ in 0..2_000 {
                let index = sampler.index_in_lane(&mut rng, lane, 4);
                assert!(index < 103);
                assert_eq!(index % 4, lane, "index {index}");
            }
        }
    }

    #[test]
    fn payloads_have_the_requested_size() {
        let pool = PayloadPool::new(256, 4);
        assert_eq!(pool.get(5).len(), 256);
        assert_ne!(pool.get(0), pool.get(1));
    }
}
