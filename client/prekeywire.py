"""Prekeys between their crypto form (``crypto.prekeys``) and their frames (``protocol.mailbox``). Pure."""

from __future__ import annotations

from susurro.crypto.prekeys import OneTimePrekey, PrekeyBundle, SignedPrekey
from susurro.protocol import Prekeys, WireBundle, WireOneTimePrekey, WireSignedPrekey

from .prekeyring import Publication


def prekeys_frame(publication: Publication) -> Prekeys:
    """The ``prekeys`` frame that publishes ``publication``."""
    spk = publication.signed
    return Prekeys(
        spk=None
        if spk is None
        else WireSignedPrekey(id=spk.key_id, pk=spk.public, at=spk.created_at, sig=spk.signature),
        opks=tuple(
            WireOneTimePrekey(id=k.key_id, pk=k.public, exp=k.expires_at, sig=k.signature) for k in publication.one_time
        ),
    )


def bundle_from_wire(bundle: WireBundle) -> PrekeyBundle:
    """A fetched bundle, still unchecked (``crypto.prekeys.check_bundle`` checks it against the pin)."""
    opk = bundle.opk
    return PrekeyBundle(
        name=bundle.name,
        identity_key=bundle.ik,
        signed=SignedPrekey(
            key_id=bundle.spk.id, public=bundle.spk.pk, created_at=bundle.spk.at, signature=bundle.spk.sig
        ),
        one_time=None
        if opk is None
        else OneTimePrekey(key_id=opk.id, public=opk.pk, expires_at=opk.exp, signature=opk.sig),
    )
