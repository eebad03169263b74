#!/usr/bin/env python3
"""Run one benchmark client and record what it cost.

usage: measure.py RESULT_FILE STDOUT_FILE STDERR_FILE TIMEOUT_SECS -- COMMAND [ARGS...]

Starts COMMAND with its standard output and error sent to the given files, waits for it (killing
it, by its PID, after TIMEOUT_SECS), and appends one line of key=value pairs to RESULT_FILE:

  exit      the exit status (negative: killed by that signal; "timeout" when the limit was hit)
  wall      seconds from just before the fork to just after the child was reaped
  user sys  the child's CPU seconds (getrusage via wait4, so only this child and nothing else)
  maxrss_kb the child's peak resident set size, as GNU time's %M reports it
  busy      machine-wide busy CPU seconds over the same interval, from /proc/stat (all cores;
            everything but idle and iowait), which also catches kernel work done in softirq
            context on behalf of the transfer, such as forwarding and the server's sends

COMMAND runs under /usr/bin/time (GNU time) for the peak RSS only: a child forked from Python
inherits the interpreter's ~10 MiB high-water mark, which exec does not reset, whereas GNU time
is small (about 1 MiB), so its %M is a fair floor for all contenders. Its own CPU time (about a
millisecond) is inside user+sys.

The clock and /proc/stat are read as close to the child's life as possible so that this
script's own start-up is not counted; it runs inside the client's network namespace so the
wrapper that enters the namespace is not counted either.
"""

import os
import signal
import sys
import time


def busy_and_ticks():
    """Busy ticks summed over all CPUs, from the aggregate line of /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = stat.readline().split()
    # cpu user nice system idle iowait irq softirq steal guest guest_nice
    values = [int(v) for v in fields[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle


def main():
    if len(sys.argv) < 7 or sys.argv[5] != "--":
        sys.exit(__doc__)
    result_file, stdout_file, stderr_file, timeout = sys.argv[1:5]
    rss_file = result_file + ".rss"
    command = ["/usr/bin/time", "-f", "%M", "-o", rss_file, "--"] + sys.argv[6:]
    timeout = float(timeout)
    hz = os.sysconf("SC_CLK_TCK")

    stdout_fd = os.open(stdout_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    stderr_fd = os.open(stderr_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    busy_before = busy_and_ticks()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            # A process group of its own, so a timeout or an interrupt can end GNU time and the
            # client together (by this group's ID, which is the child's PID).
            os.setpgid(0, 0)
            os.dup2(stdout_fd, 1)
            os.dup2(stderr_fd, 2)
            os.execvp(command[0], command)
        finally:
            os._exit(127)

    # A blocking wait4 reaps the child the moment it exits (no polling to skew the clock or the
    # CPU figures); an interval timer bounds the wait by killing the child's group when due.
    timed_out = []

    def kill_child(_signum, _frame):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def on_alarm(signum, frame):
        timed_out.append(True)
        kill_child(signum, frame)

    def on_interrupt(signum, frame):
        kill_child(signum, frame)
        # SIGKILL cannot be ignored, so this wait is short; reaping leaves no zombie behind.
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        sys.exit(130)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGINT, on_interrupt)
    signal.signal(signal.SIGTERM, on_interrupt)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    _, status, usage = os.wait4(pid, 0)
    ended = time.perf_counter()
    busy_after = busy_and_ticks()
    signal.setitimer(signal.ITIMER_REAL, 0)

    maxrss_kb = "?"
    try:
        with open(rss_file, encoding="ascii") as rss:
            # GNU time writes "Command exited with non-zero status N" first on failure.
            maxrss_kb = rss.read().split()[-1]
        os.unlink(rss_file)
    except (OSError, IndexError):
        pass

    if timed_out:
        exit_code = "timeout"
    elif os.WIFEXITED(status):
        exit_code = str(os.WEXITSTATUS(status))
    else:
        exit_code = str(-os.WTERMSIG(status))

    line = (
        f"exit={exit_code} wall={ended - started:.6f} user={usage.ru_utime:.6f} "
        f"sys={usage.ru_stime:.6f} maxrss_kb={maxrss_kb} "
        f"busy={(busy_after - busy_before) / hz:.2f}\n"
    )
    with open(result_file, "a", encoding="ascii") as out:
        out.write(line)
    sys.exit(0 if exit_code == "0" else 1)


if __name__ == "__main__":
    main()
