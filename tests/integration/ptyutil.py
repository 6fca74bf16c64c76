"""Programs on a pseudo-terminal, for what the CLI does interactively
(run -it, exec -it, dev shell, job sub -I, stats): start one, type, read
until some text shows, read on until it ends."""
import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time

from conftest import SHOAL_BIN, wait_until

CURSOR_QUERY = b"\x1b[6n"  # busybox's line editing asks where the cursor is, and waits
CURSOR_REPLY = b"\x1b[1;1R"


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def spawn(argv, env=None, rows=None, cols=None):
    """argv on a new terminal (of rows x cols when given): (pid, master fd)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            # Ctrl-C's default, as on a terminal: a shell's `pytest ... &` (no job control)
            # passes SIGINT ignored down, and `shoal stats` then never ended on it
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.execve(argv[0], argv, os.environ if env is None else env)
        finally:
            os._exit(127)
    if rows is not None:
        set_size(fd, rows, cols)
    return pid, fd


def shoal(d, *args, rows=24, cols=80):
    """`shoal ARGS` against the daemon d, on a new terminal: (pid, master fd)."""
    return spawn([SHOAL_BIN, "-H", "unix://" + d.sock] + list(args), rows=rows, cols=cols)


def _read_some(fd, wait):
    """What fd has within `wait` seconds: b"" when nothing came, None at its end."""
    if not select.select([fd], [], [], wait)[0]:
        return b""
    try:
        return os.read(fd, 4096) or None
    except OSError:  # EIO: the other side is closed
        return None


def read_until(fd, want, timeout=20):
    """All read until `want` shows, the terminal ends or timeout seconds pass
    (the caller asserts on it). A cursor position query is answered as a
    terminal would."""
    out = b""
    end = time.monotonic() + timeout
    while want not in out and time.monotonic() < end:
        chunk = _read_some(fd, 0.2)
        if chunk is None:
            break
        out += chunk
        if CURSOR_QUERY in chunk:
            os.write(fd, CURSOR_REPLY)
    return out


def finish(pid, fd, timeout=20):
    """Reads the terminal until pid ends: (its exit code, all read). Fails,
    pid killed, when it has not ended within timeout seconds."""
    out = b""
    readable = True
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            while readable:  # what it wrote last
                chunk = _read_some(fd, 0)
                readable = bool(chunk)
                out += chunk or b""
            return os.waitstatus_to_exitcode(status), out
        if readable:
            chunk = _read_some(fd, 0.05)
            readable = chunk is not None
            out += chunk or b""
        else:
            time.sleep(0.05)
    kill(pid)
    raise AssertionError("pid %d did not end within %ss: %r" % (pid, timeout, out))


def kill(pid):
    """Our child pid killed and reaped, if it still runs. Once reaped, its
    number may be another process's: then nothing is sent."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # reaped already
        return
    if not done:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def check_shell(d, container, pid, fd):
    """A busybox sh in `container` on the CLI's terminal of 30 x 100 (`shoal
    run -it`, `shoal exec -it`): it answers, sees the terminal's size and its
    changes, gets Ctrl-C instead of the CLI; the CLI ends with its exit code."""
    assert b"# " in read_until(fd, b"# ")  # the prompt: the CLI's terminal is raw now
    os.write(fd, b"echo $((6*7))\n")
    out = read_until(fd, b"42")
    assert b"42" in out, out
    os.write(fd, b"stty size\n")
    out = read_until(fd, b"30 100")
    assert b"30 100" in out, out
    check_resize(pid, fd)
    # Ctrl-C goes through the terminal to the command, not to the CLI
    os.write(fd, b"sleep 100\n")
    wait_until(lambda: "sleep 100" in d.cli("exec", container, "ps", "-o", "args").stdout
               .splitlines(), msg="sleep 100 never ran")
    os.write(fd, b"\x03")
    os.write(fd, b"echo after-$((1+1))\n")
    out = read_until(fd, b"after-2")
    assert b"after-2" in out, out
    os.write(fd, b"exit 3\n")
    assert finish(pid, fd)[0] == 3


def check_resize(pid, fd):
    """The CLI's terminal becomes 40 x 120 (SIGWINCH): the CLI passes it on,
    `stty size` of the shell at its other end says so."""
    set_size(fd, 40, 120)
    os.kill(pid, signal.SIGWINCH)
    for _ in range(50):
        os.write(fd, b"stty size\n")
        out = read_until(fd, b"40 120", timeout=0.4)
        if b"40 120" in out:
            break
    assert b"40 120" in out, out
