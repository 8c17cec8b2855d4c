//! Where the CPU went during a run: each process's user+system time from `/proc`, by
//! command name, over a window. Linux only; elsewhere the snapshots are empty.

use std::{collections::HashMap, fs, time::Instant};

/// The processes named in the breakdown; everything else is "other".
const NAMES: &[&str] = &["gantry", "gantry-bench", "nats-server", "postgres"];

pub struct Snapshot {
    at: Instant,
    /// CPU ticks of each process (pid → (name, ticks)).
    processes: HashMap<u32, (String, u64)>,
    machine: Machine,
}

/// Ticks of all CPUs from the first line of `/proc/stat`.
#[derive(Default, Clone, Copy)]
struct Machine {
    total: u64,
    idle: u64,
    /// Interrupts and soft interrupts (loopback networking lands here), not charged to
    /// any process.
    irq: u64,
    /// Time the hypervisor gave to other guests.
    steal: u64,
}

pub fn snapshot() -> Snapshot {
    let machine = machine_ticks().unwrap_or_default();
    let mut processes = HashMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(process) = process_ticks(pid) {
                processes.insert(pid, process);
            }
        }
    }
    Snapshot {
        at: Instant::now(),
        processes,
        machine,
    }
}

/// `(name, ticks)` of one process from `/proc/<pid>/stat` (utime + stime).
fn process_ticks(pid: u32) -> Option<(String, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    // After the name: state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

fn machine_ticks() -> Option<Machine> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let at = |i: usize| values.get(i).copied().unwrap_or(0);
    Some(Machine {
        total: values.iter().take(8).sum(),
        idle: at(3) + at(4),
        irq: at(5) + at(6),
        steal: at(7),
    })
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// One line: how many cores each kind of process used on average between two snapshots,
/// then the busiest other processes by name.
pub fn breakdown(before: &Snapshot, after: &Snapshot) -> String {
    let secs = after.at.duration_since(before.at).as_secs_f64();
    if secs <= 0.0 || after.machine.total == 0 {
        return "CPU breakdown unavailable".into();
    }
    let per_second = ticks_per_second();
    let cores = |ticks: u64| ticks as f64 / per_second / secs;
    let mut by_name: Vec<(&str, u64)> = NAMES.iter().map(|n| (*n, 0)).collect();
    let mut others: HashMap<&str, u64> = HashMap::new();
    for (pid, (name, ticks)) in &after.processes {
        let earlier = before
            .processes
            .get(pid)
            .filter(|(n, _)| n == name)
            .map_or(0, |(_, t)| *t);
        let used = ticks.saturating_sub(earlier);
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 += used,
            None => *others.entry(name.as_str()).or_default() += used,
        }
    }
    let delta = |f: fn(&Machine) -> u64| f(&after.machine).saturating_sub(f(&before.machine));
    let mut parts: Vec<String> = by_name
        .iter()
        .map(|(name, ticks)| format!("{name} {:.2}", cores(*ticks)))
        .collect();
    parts.push(format!("irq {:.2}", cores(delta(|m| m.irq))));
    parts.push(format!("steal {:.2}", cores(delta(|m| m.steal))));
    parts.push(format!("idle {:.2}", cores(delta(|m| m.idle))));
    let mut others: Vec<(&str, u64)> = others.into_iter().collect();
    others.sort_by_key(|(_, ticks)| std::cmp::Reverse(*ticks));
    let busiest: Vec<String> = others
        .iter()
        .take(3)
        .filter(|(_, ticks)| cores(*ticks) >= 0.05)
        .map(|(name, ticks)| format!("{name} {:.2}", cores(*ticks)))
        .collect();
    let other: u64 = others.iter().map(|(_, t)| t).sum();
    let mut line = format!("{}, others {:.2}", parts.join(", "), cores(other));
    if !busiest.is_empty() {
        line.push_str(&format!(" ({})", busiest.join(", ")));
    }
    line
}
