"""Every registry observer the server installs declares and fulfils
IStreamObserver, the contract the registry calls them through."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from srs_twisted import config as srs_config
from srs_twisted.interfaces import IStreamObserver
from srs_twisted.service import SrsService


class ObserverContractTests(unittest.TestCase):
    def test_every_installed_observer_provides_istreamobserver(self):
        srv = SrsService(srs_config.load_string("vhost __defaultVhost__ {}\n"), MemoryReactorClock())
        observers = srv.ctx.registry.observers
        names = sorted(type(o).__name__ for o in observers)
        self.assertEqual(
            names,
            sorted(
                [
                    "DashObserver",
                    "DvrObserver",
                    "EdgeObserver",
                    "ExecObserver",
                    "ForwardObserver",
                    "HlsObserver",
                    "SnapshotObserver",
                    "TranscodeObserver",
                ]
            ),
        )
        for observer in observers:
            self.assertTrue(IStreamObserver.providedBy(observer), type(observer).__name__)
            self.assertTrue(verifyObject(IStreamObserver, observer))
