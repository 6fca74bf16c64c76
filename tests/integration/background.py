"""CPU-bound preparations (cross builds, the fuzz build and runs, the Debian
package) run in the background while the wait-dominated tests run.

A module lists its Jobs in BACKGROUND; when the session has collected
(conftest's pytest_collection_finish), the jobs of every module with a test
that will run are queued, in run order, on one worker thread at nice 10
(Linux niceness is per thread and inherited by the processes it starts): they
use the CPU the daemons under test leave idle, one job at a time. A test that
needs a job's result waits for it (Job.result), and the job gets normal
priority back meanwhile. A job nobody queued (the module run on its own) runs
when first asked for, on the same worker. What a job raises is raised again
in every test that asks."""
import os
import queue
import threading

# nice 10: a weight of 110 against the tests' 1024, but not 19's 15, which on a machine loaded
# by other work starved a fuzz target's input towards libFuzzer's 30 s (wall clock) hang limit
LOW_PRIORITY = 10
_PENDING = queue.Queue()
_worker = None
_worker_tid = None
_worker_lock = threading.Lock()


class Job:
    """fn() run once on the background worker; its value or exception kept."""

    def __init__(self, name, fn):
        self.name = name
        self._fn = fn
        self._done = threading.Event()
        self._queued = False
        self._value = None
        self._error = None

    def start(self):
        """Queues the job (once)."""
        with _worker_lock:
            if self._queued:
                return
            self._queued = True
            _PENDING.put(self)
            _start_worker()

    def result(self):
        """Waits for the job (queueing it if nobody did); its value, or raises its exception.
        While a test waits, the job runs at normal priority (other work on the machine would
        otherwise hold it back)."""
        self.start()
        while not self._done.wait(2):
            _hurry()
        if self._error is not None:
            raise self._error
        return self._value

    def _run(self):
        try:
            self._value = self._fn()
        except BaseException as e:  # noqa: BLE001 - given to every test asking for the result
            self._error = e
        self._done.set()


def _start_worker():
    global _worker
    if _worker is None:
        _worker = threading.Thread(target=_work, name="background-jobs", daemon=True)
        _worker.start()


def _work():
    global _worker_tid
    _worker_tid = threading.get_native_id()
    while True:
        job = _PENDING.get()
        if job is None:
            return
        os.setpriority(os.PRIO_PROCESS, _worker_tid, LOW_PRIORITY)
        job._run()


def _descendants(pid):
    """The pids of pid's descendants (a snapshot of /proc)."""
    children = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _hurry():
    """Normal priority for the worker thread and the processes its job started (the
    descendants at LOW_PRIORITY: the tests' own processes run at normal priority)."""
    if _worker_tid is None:
        return
    tids = [_worker_tid]
    for pid in _descendants(os.getpid()):
        try:
            tids += [int(t) for t in os.listdir("/proc/%d/task" % pid)]  # niceness is per thread
        except OSError:
            pass  # ended meanwhile
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) == LOW_PRIORITY:
                os.setpriority(os.PRIO_PROCESS, tid, 0)
        except OSError:
            pass  # ended meanwhile, or not root


def will_run(item):
    """False when a skip mark (or a skipif with a true condition) skips the test item."""
    for mark in item.iter_markers():
        if mark.name == "skip" or (mark.name == "skipif" and mark.args and mark.args[0] is True):
            return False
    return True


def start_for(items):
    """Queues the BACKGROUND jobs of the modules of the test items that will run."""
    modules = []
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module not in modules and will_run(item):
            modules.append(module)
    for module in modules:
        for job in getattr(module, "BACKGROUND", ()):
            job.start()


def finish():
    """Drops the jobs not started yet and waits for the running one (pytest stopped
    early): no build is left writing into the tree after the session."""
    while True:
        try:
            job = _PENDING.get_nowait()
        except queue.Empty:
            break
        job._error = RuntimeError("background job %s dropped at the session's end" % job.name)
        job._done.set()
    if _worker is not None:
        _PENDING.put(None)
        _worker.join()
