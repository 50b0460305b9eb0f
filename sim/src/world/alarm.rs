//! One re-armable timer per task, at an exact simulated time.
//!
//! madsim's `Sleep` registers a new timer each time it is polled and rounds every wait up to
//! 1 ms. A loop that waits on "a message, or my next deadline" then leaves a timer behind for
//! every message it receives, each waking the task once more for nothing. An `Alarm` keeps at
//! most one timer pending at or before the deadline asked for: a later deadline reuses the
//! pending one (which, when it fires early, arms the next), an earlier one arms a new one.
//! Timers are madsim's: time stays simulated and deterministic.

use futures::task::{waker, ArcWake, AtomicWaker};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// What a fired timer reaches: the task waiting on the alarm.
#[derive(Default)]
struct Bell {
    task: AtomicWaker,
    rang: AtomicBool,
}

impl ArcWake for Bell {
    fn wake_by_ref(bell: &Arc<Self>) {
        bell.rang.store(true, Ordering::Relaxed);
        bell.task.wake();
    }
}

pub struct Alarm {
    bell: Arc<Bell>,
    time: madsim::time::TimeHandle,
    /// The earliest pending timer, in simulated µs since the start (None: none pending).
    armed_us: Option<u64>,
}

impl Default for Alarm {
    fn default() -> Alarm {
        Alarm::new()
    }
}

impl Alarm {
    pub fn new() -> Alarm {
        Alarm {
            bell: Arc::new(Bell::default()),
            time: madsim::time::TimeHandle::current(),
            armed_us: None,
        }
    }

    /// Resolves once simulated time reaches `deadline_us` (µs since the run started).
    pub fn until(&mut self, deadline_us: u64) -> Until<'_> {
        Until {
            alarm: self,
            deadline_us,
        }
    }
}

pub struct Until<'a> {
    alarm: &'a mut Alarm,
    deadline_us: u64,
}

impl Future for Until<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let alarm = &mut *this.alarm;
        let now_us = u64::try_from(alarm.time.elapsed().as_micros())
            .expect("invariant: a run lasts less than 584,000 years");
        if alarm.bell.rang.swap(false, Ordering::Relaxed)
            && alarm.armed_us.is_some_and(|armed| armed <= now_us)
        {
            alarm.armed_us = None;
        }
        if now_us >= this.deadline_us {
            return Poll::Ready(());
        }
        alarm.bell.task.register(cx.waker());
        if alarm.armed_us.is_none_or(|armed| armed > this.deadline_us) {
            // A Sleep whose deadline is reset registers at exactly that time when polled; the
            // timer holds the bell's waker, not the task's, so the alarm knows it rang.
            let now = alarm.time.now_instant();
            let mut sleep = std::pin::pin!(alarm.time.sleep_until(now));
            let wait = Duration::from_micros(this.deadline_us - now_us);
            sleep.as_mut().reset(now + wait);
            let bell = waker(alarm.bell.clone());
            let polled = sleep.as_mut().poll(&mut Context::from_waker(&bell));
            assert!(
                polled.is_pending(),
                "invariant: the deadline is in the future"
            );
            alarm.armed_us = Some(this.deadline_us);
        }
        Poll::Pending
    }
}
