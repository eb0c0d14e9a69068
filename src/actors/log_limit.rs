//! A budget for log lines that carry what peers send (usernames, domains, addresses): a peer
//! that floods handshakes must not flood the log too. At most `per_second` lines pass in each
//! one-second window; the first line of a later window says how many were held back.

use std::time::{Duration, Instant};

/// One second's budget of lines.
#[derive(Debug)]
pub(crate) struct LogBudget {
    per_second: u32,
    window: Option<Instant>,
    spent: u32,
    held_back: u64,
}

impl LogBudget {
    pub(crate) const fn new(per_second: u32) -> Self {
        LogBudget {
            per_second,
            window: None,
            spent: 0,
            held_back: 0,
        }
    }

    /// Whether a line may be logged at `now`: `Some(n)` with the number of lines held back
    /// since the last one that passed, `None` when the budget of this second is spent.
    pub(crate) fn spend(&mut self, now: Instant) -> Option<u64> {
        let fresh = self
            .window
            .is_none_or(|start| now.saturating_duration_since(start) >= Duration::from_secs(1));
        if fresh {
            self.window = Some(now);
            self.spent = 0;
        }
        if self.spent >= self.per_second {
            self.held_back += 1;
            return None;
        }
        self.spent += 1;
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_budget_passes_each_second_and_the_next_line_counts_the_rest() {
        let mut budget = LogBudget::new(3);
        let start = Instant::now();
        let passed: Vec<Option<u64>> = (0..5).map(|_| budget.spend(start)).collect();
        assert_eq!(passed, [Some(0), Some(0), Some(0), None, None]);
        let later = start + Duration::from_millis(999);
        assert_eq!(budget.spend(later), None);
        let next = start + Duration::from_secs(1);
        assert_eq!(budget.spend(next), Some(3));
        assert_eq!(budget.spend(next), Some(0));
    }
}
