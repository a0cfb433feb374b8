"""Applications that run on `TcpHost`s: a file server and download clients."""

from kplab.apps.download import Download, DownloadClient, DownloadWorkload, Outcome
from kplab.apps.fileserver import FileServer

__all__ = ["Download", "DownloadClient", "DownloadWorkload", "FileServer", "Outcome"]
