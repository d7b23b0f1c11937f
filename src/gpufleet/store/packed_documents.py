"""Nested JSON documents stored packed: deflated against a dictionary of the reference's names.

A workload's nested fields are short JSON objects whose text is mostly the same key names and
enum values in every row; deflate alone finds little to repeat inside one small document, but
given those names as a preset dictionary it keeps about a third of the text. The first byte
names the format, so a later dictionary can be added beside this one, never in its place:
rows packed with it must stay readable.
"""

from __future__ import annotations

import zlib

# Fragments of the nested fields' JSON as the reference shapes them, the most common last
# (deflate reaches the end of its dictionary most cheaply). Never edit: stored rows use it.
_FRAGMENTS_V1 = (
    '"externalConnections":[',
    '"phaseReason":"',
    '"sourceApi":"',
    '"topology":',
    '"additionalFields":',
    '"urls":["https://',
    '"environmentVariables":{',
    '"command":"',
    '"arguments":"',
    '"preemptible":false',
    '"images":["',
    '"requestedNodePools":["default"]',
    '"currentNodePools":["',
    '"requestedPods":{"number":',
    '"min":',
    '"max":',
    '"actionsSupport":{"delete":true,"suspend":true}',
    '"allocatedResources":{"gpu":',
    '"gpuMemory":"',
    '"cpuMemory":"',
    '"datasources":[{"type":"',
    '"type":"pvc"',
    '"type":"nfs"',
    '"type":"s3"',
    '"type":"git"',
    '"replicaType":"',
    '"environments":[{"name":"',
    '"connections":[{"name":"',
    '"toolType":"',
    '"connectionType":"',
    '"url":"https://',
    '"authorizationType":"',
    '"containerPort":',
    '"authorizedUsers":[',
    '"authorizedGroups":[',
    '"podsRequestedResources":{"gpuRequestType":"portion","gpu":{"request":',
    '"workloadRequestedResources":{"gpuRequestType":"portion","gpu":{"request":',
    '"cpu":{"request":',
    '"limit":null}',
    '"cpuMemory":{"request":"',
    '"limit":"',
    'Gi"',
    '"conditions":[{"type":"',
    '"status":"True","lastTransitionTime":"',
    '"status":"False","lastTransitionTime":"',
    '"reason":"',
    '"message":"',
    '"name":"',
    '"id":"',
    "Running",
    "Pending",
    "Completed",
    "Failed",
    "Created",
    "Ready",
    "Initializing",
    "Evicted",
    "Scheduled",
)
_DICTIONARY_V1 = "".join(_FRAGMENTS_V1).encode()
_V1 = b"\x01"
_WBITS = -15  # raw deflate: the format byte replaces zlib's header and checksum


def pack(text: bytes) -> bytes:
    """``text`` (JSON) in its stored form."""
    packer = zlib.compressobj(
        zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, _WBITS, zdict=_DICTIONARY_V1
    )
    return _V1 + packer.compress(text) + packer.flush()


def unpack(packed: bytes) -> bytes:
    """The text a stored form holds."""
    if packed[:1] != _V1:
        raise ValueError("not a packed document of a known format")
    unpacker = zlib.decompressobj(_WBITS, zdict=_DICTIONARY_V1)
    return unpacker.decompress(packed[1:]) + unpacker.flush()
