//! Deterministic allocation of users to scenarios.
//!
//! Weights are reduced by their GCD and interleaved into one repeating pattern
//! (smooth weighted round-robin), so user `i` always runs `pattern[i % len]`. Any
//! prefix of whole patterns has the exact proportions: 200 users at 60/40 are 120/80,
//! and a ramp is never more than one pattern away from them.

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Each scenario's weight for this run: the profile's `weights` override the plan's.
pub fn weights(
    program: &crate::lang::ir::Program,
    profile: &crate::profile::LoadProfile,
) -> Vec<u32> {
    program
        .scenarios
        .iter()
        .map(|s| profile.weights.get(&s.name).copied().unwrap_or(s.weight))
        .collect()
}

/// One period of the interleaved pattern: indices into `weights`.
pub fn pattern(weights: &[u32]) -> Vec<usize> {
    let g = weights.iter().copied().filter(|w| *w > 0).fold(0, gcd);
    if g == 0 {
        return Vec::new();
    }
    let reduced: Vec<i64> = weights.iter().map(|w| i64::from(w / g)).collect();
    let total: i64 = reduced.iter().sum();
    let mut current = vec![0i64; reduced.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&reduced) {
            *c += w;
        }
        let (best, _) = current
            .iter()
            .enumerate()
            .max_by(|(ia, a), (ib, b)| a.cmp(b).then(ib.cmp(ia)))
            .unwrap_or((0, &0));
        current[best] -= total;
        out.push(best);
    }
    out
}

/// The scenario index of user `i`.
pub fn scenario_of(pattern: &[usize], user: u64) -> usize {
    if pattern.is_empty() {
        0
    } else {
        pattern[(user % pattern.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(weights: &[u32], users: u64) -> Vec<u64> {
        let p = pattern(weights);
        let mut c = vec![0; weights.len()];
        for u in 0..users {
            c[scenario_of(&p, u)] += 1;
        }
        c
    }

    #[test]
    fn weights_split_users_proportionally() {
        assert_eq!(counts(&[60, 40], 200), vec![120, 80]);
        assert_eq!(counts(&[80, 20], 5), vec![4, 1]);
        assert_eq!(counts(&[70, 30], 50), vec![35, 15]);
        assert_eq!(counts(&[1, 1, 1], 9), vec![3, 3, 3]);
    }

    #[test]
    fn pattern_interleaves_instead_of_blocking() {
        assert_eq!(pattern(&[60, 40]), vec![0, 1, 0, 1, 0]);
    }

    #[test]
    fn every_prefix_is_within_one_user_of_exact() {
        let w = [60u32, 40];
        let p = pattern(&w);
        for n in 1..=200u64 {
            let c = {
                let mut c = [0u64; 2];
                for u in 0..n {
                    c[scenario_of(&p, u)] += 1;
                }
                c
            };
            let exact = n as f64 * 0.6;
            assert!((c[0] as f64 - exact).abs() <= 1.0, "n={n} {c:?}");
        }
    }
}
