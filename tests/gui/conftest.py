"""GUI test fixtures: a real X display (Xvfb when none is set) and a real Tk root.

All GUI tests in one process share one Xvfb, started on a free display number
that Xvfb picks itself (``-displayfd``), so parallel runs never collide.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.hostile_relay import TamperingProxy
from tests.helpers.xvfb import start_xvfb, stop_xvfb, xvfb_binary


@pytest.fixture(scope="session")
def display(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``$DISPLAY`` if set, else a private Xvfb for this test session."""
    existing = os.environ.get("DISPLAY")
    if existing:
        yield existing
        return
    if xvfb_binary() is None:
        pytest.skip("Xvfb not installed")
    proc, name = start_xvfb(tmp_path_factory.mktemp("xvfb") / "xvfb.log")
    os.environ["DISPLAY"] = name
    try:
        yield name
    finally:
        del os.environ["DISPLAY"]
        stop_xvfb(proc)


@pytest.fixture(autouse=True)
def _collect_tk_garbage() -> Iterator[None]:
    """Collect each GUI test's garbage on the main thread, while it is still the test's.

    A tkinter ``Image`` or ``Variable`` left in a reference cycle is freed by
    whichever thread the garbage collector next runs on. Freed on a worker
    thread of a later test (a relay's reader, a client's), its ``__del__``
    calls into Tcl, which waits about a second for the main loop and then
    raises "main thread is not in main loop"; a test whose threads meet at a
    barrier then times out. While the test runs, no other thread may collect
    either: the tests drive Tk with ``update()``, not ``mainloop()``, so Tcl
    cannot hand such a call to the main thread, and one that lands while the
    main thread is inside Tcl (``focus_force``) crashed the whole run with a
    segfault. The real app runs ``mainloop()``, where tkinter passes calls
    from other threads to the main thread as it should.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.enable()


@pytest.fixture(autouse=True)
def _private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Key files, trust store and GUI settings of the code under test stay in the test's directory."""
    monkeypatch.setenv("SUSURRO_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def _session_root(display: str) -> Iterator[object]:
    """One Tk interpreter for the whole session.

    Tk keeps per-display state (focus, grabs) in process-wide structures; a
    second ``Tk()`` after destroying the first can crash in ``focus -force``
    on stale entries. So all GUI tests share one hidden root, and each test
    opens and closes its own Toplevel windows in it.
    """
    import tkinter

    root = tkinter.Tk(className="SusurroTest")
    root.withdraw()
    try:
        yield root
    finally:
        root.destroy()


@pytest.fixture
def tk_root(_session_root: object) -> Iterator[object]:
    """The shared root, with every window a test left open destroyed afterwards."""
    root = _session_root
    try:
        yield root
    finally:
        for child in list(root.winfo_children()):  # type: ignore[attr-defined]
            child.destroy()
        root.update()  # type: ignore[attr-defined]


@pytest.fixture
def proxy(relay_server) -> Iterator[TamperingProxy]:  # type: ignore[no-untyped-def]
    """The hostile relay of the adversarial suite in front of the test's relay: a hook per client."""
    tamper = TamperingProxy(relay_server.address)
    try:
        yield tamper
    finally:
        tamper.close()
    assert not tamper.errors, tamper.errors
