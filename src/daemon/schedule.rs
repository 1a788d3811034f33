//! When the next run starts and what it must do: a state machine fed the
//! loop's events with the time each came, returning whether to run now.
//! Pure (no clock, no I/O), so its rules are tested with plain data.
//!
//! - Work coalesces: however many events arrive while a run is going (or
//!   waiting), the next run does the union of what they asked, once.
//! - File events open a quiet period: a run starts `--debounce` after the
//!   last of them, at the latest [`MAX_WAIT_FACTOR`] x `--debounce` after
//!   the first, so that a directory that never stops changing is still
//!   reconciled.
//! - The first webhook of a burst fetches at once; the rest (each within
//!   [`HOOK_QUIET`] of the one before) give one more fetch when they stop.
//!   A file event queued beside a webhook keeps its quiet period: a run
//!   at once would read the file, and its event would then start another.
//! - A run with failed jobs is tried again after the runner's backoff; a
//!   change of role or of the token file tries at once.

use std::time::{Duration, Instant};

/// What the next run must do.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pending {
    /// Fetch the Git source before reading it.
    pub fetch: bool,
    /// Read the source and reconcile.
    pub run: bool,
    /// Read the next slice of live jobs for drift.
    pub drift: bool,
}

impl Pending {
    fn any(self) -> bool {
        self.fetch || self.run || self.drift
    }
}

/// What happened, as the schedule needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Event {
    /// The manifests directory changed.
    FileChanged,
    /// A verified webhook came; `file_queued`: a file event was waiting
    /// beside it.
    Webhook { file_queued: bool },
    /// A standby relayed a webhook to this leader.
    RelayedWebhook,
    /// `--token-file` holds a new token while the old one is refused.
    TokenChanged,
    /// This replica's role changed (a new leader applies at once; a new
    /// standby refreshes its readiness).
    RoleChanged,
    /// `--resync` elapsed.
    Resync,
    /// `--interval` elapsed: poll the Git source.
    Poll,
    /// The next drift slice is due.
    DriftSlice,
    /// The quiet period ([`Schedule::quiet_until`]) is over.
    QuietOver,
    /// The retry ([`Schedule::retry_at`]) is due.
    RetryDue,
    /// A run ended; with failed jobs, to be tried again after `retry_in`.
    RunEnded { retry_in: Option<Duration> },
}

/// What the loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Run(Pending),
    Wait,
}

/// The longest a burst of events can hold a run back, in `--debounce`s.
pub(super) const MAX_WAIT_FACTOR: u32 = 10;

/// The quiet period that closes a burst of webhooks (at most `--debounce`).
pub(super) const HOOK_QUIET: Duration = Duration::from_millis(50);

/// Pending work and the timers that hold it back.
#[derive(Debug)]
pub(super) struct Schedule {
    debounce: Duration,
    pending: Pending,
    /// Open while file events or webhooks keep arriving: no run starts
    /// until it closes.
    quiet: Option<Quiet>,
    /// When the last webhook came: one closer than [`HOOK_QUIET`] is the
    /// same burst.
    last_hook: Option<Instant>,
    retry_at: Option<Instant>,
}

impl Schedule {
    /// A sidecar that just started: fetch and run at once.
    pub(super) fn new(debounce: Duration) -> Schedule {
        Schedule {
            debounce,
            pending: Pending {
                fetch: true,
                run: true,
                drift: false,
            },
            quiet: None,
            last_hook: None,
            retry_at: None,
        }
    }

    /// Takes in `event`, which came at `now`.
    pub(super) fn on(&mut self, event: Event, now: Instant) -> Action {
        let pending = &mut self.pending;
        match event {
            Event::FileChanged => {
                pending.run = true;
                self.quiet = Quiet::extend_at(self.quiet, self.debounce, now);
            }
            Event::Webhook { file_queued } => self.webhook(file_queued, now),
            Event::RelayedWebhook | Event::Poll => pending.fetch = true,
            Event::TokenChanged => {
                pending.run = true;
                self.retry_at = None;
                self.quiet = Quiet::extend_at(self.quiet, self.debounce, now);
            }
            Event::RoleChanged => {
                pending.fetch = true;
                pending.run = true;
                self.retry_at = None;
            }
            Event::Resync => pending.run = true,
            Event::DriftSlice => pending.drift = true,
            Event::QuietOver => self.quiet = None,
            Event::RetryDue => {
                self.retry_at = None;
                pending.run = true;
            }
            Event::RunEnded { retry_in } => self.retry_at = retry_in.map(|d| now + d),
        }
        self.next()
    }

    /// All the pending work, once no quiet period holds it back.
    pub(super) fn next(&mut self) -> Action {
        if self.pending.any() && self.quiet.is_none() {
            Action::Run(std::mem::take(&mut self.pending))
        } else {
            Action::Wait
        }
    }

    pub(super) fn quiet_until(&self) -> Option<Instant> {
        self.quiet.map(|q| q.until)
    }

    pub(super) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    fn webhook(&mut self, file_queued: bool, now: Instant) {
        self.pending.fetch = true;
        if file_queued {
            self.pending.run = true;
            self.quiet = Quiet::extend_at(self.quiet, self.debounce, now);
        }
        let hook_quiet = HOOK_QUIET.min(self.debounce);
        if self
            .last_hook
            .is_some_and(|t| now.duration_since(t) < hook_quiet)
        {
            self.quiet = Quiet::extend_hook(self.quiet, hook_quiet, now);
        }
        self.last_hook = Some(now);
    }
}

/// A debounce window: it closes `--debounce` after the last event, and at
/// the latest [`MAX_WAIT_FACTOR`] times `--debounce` after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quiet {
    first: Instant,
    until: Instant,
}

impl Quiet {
    /// A webhook's window: like a file event's, but never closing an open
    /// window (a file event's longer `--debounce`) sooner.
    fn extend_hook(window: Option<Quiet>, quiet: Duration, now: Instant) -> Option<Quiet> {
        let extended = Self::extend_at(window, quiet, now);
        match (window, extended) {
            (Some(open), Some(new)) if open.until > new.until => Some(open),
            (_, new) => new.or(window),
        }
    }

    /// The window after an event at `now`; `None` (run at once) for a
    /// zero debounce.
    fn extend_at(window: Option<Quiet>, debounce: Duration, now: Instant) -> Option<Quiet> {
        if debounce.is_zero() {
            return None;
        }
        let first = window.map_or(now, |w| w.first);
        let cap = first + debounce * MAX_WAIT_FACTOR;
        Some(Quiet {
            first,
            until: (now + debounce).min(cap),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    const FETCH: Pending = Pending {
        fetch: true,
        run: false,
        drift: false,
    };
    const RUN: Pending = Pending {
        fetch: false,
        run: true,
        drift: false,
    };

    /// A schedule past its first run, idle.
    fn idle(debounce: Duration, t0: Instant) -> Schedule {
        let mut s = Schedule::new(debounce);
        assert!(matches!(s.next(), Action::Run(_)));
        assert_eq!(s.on(Event::RunEnded { retry_in: None }, t0), Action::Wait);
        s
    }

    #[test]
    fn a_sidecar_fetches_and_runs_at_once_on_start() {
        let work = Pending {
            fetch: true,
            run: true,
            drift: false,
        };
        assert_eq!(Schedule::new(ms(200)).next(), Action::Run(work));
    }

    #[test]
    fn a_webhook_never_closes_a_file_events_window_sooner() {
        let t0 = Instant::now();
        let file = Quiet::extend_at(None, ms(200), t0);
        let after_hook = Quiet::extend_hook(file, ms(50), t0 + ms(10));
        assert_eq!(after_hook, file);
        // Alone, a webhook's window is the short one, moving with each.
        let w = Quiet::extend_hook(None, ms(50), t0).expect("a window");
        assert_eq!(w.until, t0 + ms(50));
        let w = Quiet::extend_hook(Some(w), ms(50), t0 + ms(30)).expect("a window");
        assert_eq!((w.first, w.until), (t0, t0 + ms(80)));
    }

    #[test]
    fn the_quiet_period_runs_from_the_last_event_up_to_ten_debounces() {
        let t0 = Instant::now();
        let d = ms(200);
        let w = Quiet::extend_at(None, d, t0).expect("a window");
        assert_eq!((w.first, w.until), (t0, t0 + d));
        // Another event 150 ms later: the window moves with it.
        let w = Quiet::extend_at(Some(w), d, t0 + ms(150)).expect("a window");
        assert_eq!((w.first, w.until), (t0, t0 + ms(350)));
        // Events every 150 ms for ever: the window closes 2 s after the first.
        let mut w = Some(w);
        for i in 2..40 {
            w = Quiet::extend_at(w, d, t0 + ms(150 * i));
        }
        assert_eq!(w.expect("a window").until, t0 + ms(2000));
        assert_eq!(Quiet::extend_at(None, Duration::ZERO, t0), None);
    }

    #[test]
    fn file_events_hold_the_run_back_up_to_ten_debounces() {
        let t0 = Instant::now();
        let mut s = idle(ms(200), t0);
        for i in 0..40 {
            assert_eq!(s.on(Event::FileChanged, t0 + ms(150 * i)), Action::Wait);
        }
        assert_eq!(s.quiet_until(), Some(t0 + ms(2000)));
        assert_eq!(s.on(Event::QuietOver, t0 + ms(2000)), Action::Run(RUN));
        assert_eq!(s.next(), Action::Wait);
    }

    #[test]
    fn a_zero_debounce_runs_at_each_file_event() {
        let t0 = Instant::now();
        let mut s = idle(Duration::ZERO, t0);
        assert_eq!(s.on(Event::FileChanged, t0), Action::Run(RUN));
        assert_eq!(s.quiet_until(), None);
    }

    #[test]
    fn a_burst_of_webhooks_gives_one_follow_up() {
        let t0 = Instant::now();
        let mut s = idle(ms(200), t0);
        // The first fetches at once.
        let hook = Event::Webhook { file_queued: false };
        assert_eq!(s.on(hook, t0), Action::Run(FETCH));
        assert_eq!(s.on(Event::RunEnded { retry_in: None }, t0), Action::Wait);
        // The rest, 10 ms apart, wait until they stop.
        for i in 1..=5 {
            assert_eq!(s.on(hook, t0 + ms(10 * i)), Action::Wait);
        }
        assert_eq!(s.quiet_until(), Some(t0 + ms(50 + 50)));
        assert_eq!(s.on(Event::QuietOver, t0 + ms(100)), Action::Run(FETCH));
        assert_eq!(s.next(), Action::Wait);
        // Later, a webhook is a new burst: at once again.
        assert_eq!(s.on(hook, t0 + ms(1000)), Action::Run(FETCH));
    }

    #[test]
    fn a_webhook_with_a_queued_file_event_keeps_the_files_quiet_period() {
        let t0 = Instant::now();
        let mut s = idle(ms(200), t0);
        let hook = Event::Webhook { file_queued: true };
        assert_eq!(s.on(hook, t0), Action::Wait);
        assert_eq!(s.quiet_until(), Some(t0 + ms(200)));
        // A second webhook of the burst does not close it sooner.
        let hook = Event::Webhook { file_queued: false };
        assert_eq!(s.on(hook, t0 + ms(10)), Action::Wait);
        assert_eq!(s.quiet_until(), Some(t0 + ms(200)));
        let both = Pending {
            fetch: true,
            run: true,
            drift: false,
        };
        assert_eq!(s.on(Event::QuietOver, t0 + ms(200)), Action::Run(both));
    }

    #[test]
    fn a_failed_run_is_retried_after_its_backoff() {
        let t0 = Instant::now();
        let mut s = idle(ms(200), t0);
        let ended = Event::RunEnded {
            retry_in: Some(Duration::from_secs(5)),
        };
        assert_eq!(s.on(ended, t0), Action::Wait);
        assert_eq!(s.retry_at(), Some(t0 + Duration::from_secs(5)));
        let due = t0 + Duration::from_secs(5);
        assert_eq!(s.on(Event::RetryDue, due), Action::Run(RUN));
        assert_eq!(s.retry_at(), None);
        // A run that succeeds clears the retry.
        s.on(ended, due);
        assert_eq!(s.on(Event::RunEnded { retry_in: None }, due), Action::Wait);
        assert_eq!(s.retry_at(), None);
    }

    #[test]
    fn a_new_token_or_role_tries_at_once_instead_of_at_the_retry() {
        let t0 = Instant::now();
        let mut s = idle(Duration::ZERO, t0);
        let ended = Event::RunEnded {
            retry_in: Some(Duration::from_secs(60)),
        };
        s.on(ended, t0);
        assert_eq!(s.on(Event::TokenChanged, t0), Action::Run(RUN));
        assert_eq!(s.retry_at(), None);
        s.on(ended, t0);
        let both = Pending {
            fetch: true,
            run: true,
            drift: false,
        };
        assert_eq!(s.on(Event::RoleChanged, t0), Action::Run(both));
        assert_eq!(s.retry_at(), None);
        // With a debounce, a new token waits for the quiet period.
        let mut s = idle(ms(200), t0);
        assert_eq!(s.on(Event::TokenChanged, t0), Action::Wait);
        assert_eq!(s.quiet_until(), Some(t0 + ms(200)));
    }

    #[test]
    fn a_drift_slice_runs_alone_or_joins_the_run_a_quiet_period_holds() {
        let t0 = Instant::now();
        let mut s = idle(ms(200), t0);
        let drift = Pending {
            fetch: false,
            run: false,
            drift: true,
        };
        assert_eq!(s.on(Event::DriftSlice, t0), Action::Run(drift));
        assert_eq!(s.on(Event::FileChanged, t0), Action::Wait);
        assert_eq!(s.on(Event::DriftSlice, t0 + ms(10)), Action::Wait);
        assert_eq!(s.on(Event::Resync, t0 + ms(20)), Action::Wait);
        let both = Pending {
            fetch: false,
            run: true,
            drift: true,
        };
        assert_eq!(s.on(Event::QuietOver, t0 + ms(200)), Action::Run(both));
    }

    #[test]
    fn polls_and_relayed_webhooks_fetch() {
        let t0 = Instant::now();
        let mut s = idle(ms(200), t0);
        assert_eq!(s.on(Event::Poll, t0), Action::Run(FETCH));
        assert_eq!(s.on(Event::RelayedWebhook, t0), Action::Run(FETCH));
    }
}
