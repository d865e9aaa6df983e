"""StopOnSignal: the first signal asks the loop to stop, a second one stops the process at once."""

import os
import signal
import threading
from types import SimpleNamespace

import pytest

from dynconv_nlp.training.guard import StopOnSignal

ONE_PROCESS = SimpleNamespace(num_processes=1, is_local_main_process=True)


def test_a_first_signal_is_a_request_and_a_second_stops_at_once():
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, whatever ran before
    try:
        with StopOnSignal(ONE_PROCESS) as stop:
            assert stop.requested() is None
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.requested() == signal.SIGINT  # no KeyboardInterrupt: the loop decides when to stop
            with pytest.raises(KeyboardInterrupt):  # the handler from before: Ctrl-C twice quits
                os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outside)


def test_an_ignored_signal_stays_ignored():
    outside = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a background job of a shell script
    try:
        with StopOnSignal(ONE_PROCESS) as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.requested() is None
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, outside)


def test_outside_the_main_thread_no_handler_is_set():
    before, errors = signal.getsignal(signal.SIGTERM), []

    def enter():
        try:
            with StopOnSignal(ONE_PROCESS) as stop:
                errors.append(stop.requested())
        except Exception as error:  # signal.signal would raise ValueError in a thread
            errors.append(error)

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    assert errors == [None] and signal.getsignal(signal.SIGTERM) is before
