"""Malformed hardware documents and the exact one-line, located message each one gets.

Each edit case applies one textual replacement to a small valid document (BASE); the message
must name the file, the line, the YAML path, what was found and what was expected. The wording
is pinned on purpose: it is the user interface of strict loading.
"""
from __future__ import annotations

import pytest

from memsim.cli import main
from memsim.errors import SpecError
from memsim.hardware import parse_hardware

BASE = """\
version: 1
name: toy
kind: gpu
gpu: {sms: 2, max_blocks_per_sm: 4, launch_overhead: 2 us, source: s}
memories:
  - name: sram
    kind: scratchpad
    capacity: 64 KiB
    instances: 2
    parent: hbm
    bandwidth: 1 TB/s
    source: s
  - name: hbm
    kind: dram
    capacity: 1 GiB
    bandwidth: 100 GB/s
    source: s
compute:
  - name: tensor
    rates:
      bf16: {peak: 10 TFLOP/s, source: s}
"""

# (case id, text to replace in BASE (must occur once), replacement, exact message)
EDITS = [
    ('unknown-key-root', 'kind: gpu\n', 'kind: gpu\ncolour: red\n',
     "hw.yaml:4: colour: unknown key 'colour', expected one of: compute, description, fabric, gpu, kind, links, memories, name, sources, version"),
    ('unknown-key-typo', '    instances: 2\n', '    instances: 2\n    instnces: 2\n',
     "hw.yaml:10: memories[0].instnces: unknown key 'instnces', expected one of: achievable_bandwidth, achievable_source, bandwidth, bandwidth_scope, cache, capacity, flash, granularity, instances, kind, latency, max_per_block, name, parent, per, source; did you mean 'instances'?"),
    ('duplicate-key', '    capacity: 1 GiB\n', '    capacity: 1 GiB\n    capacity: 2 GiB\n',
     "hw.yaml:16: duplicate key 'capacity' (first given on line 15), expected each key once"),
    ('duplicate-level-name', '  - name: hbm\n', '  - name: sram\n',
     "hw.yaml:13: memories[1].name: duplicate memory level name 'sram', expected unique names"),
    ('wrong-type-int', 'sms: 2,', 'sms: two,',
     "hw.yaml:4: gpu.sms: found str 'two', expected an integer"),
    ('wrong-type-bool-int', '    instances: 2\n', '    instances: true\n',
     'hw.yaml:9: memories[0].instances: found boolean True, expected an integer'),
    ('wrong-type-float-instances', '    instances: 2\n', '    instances: 2.5\n',
     'hw.yaml:9: memories[0].instances: found float 2.5, expected an integer'),
    ('wrong-type-list', 'memories:\n', 'memories: {}\nx:\n',
     'hw.yaml:5: memories: found a mapping, expected a list of mappings'),
    ('missing-name', 'name: toy\n', '',
     "hw.yaml:1: missing required field 'name' (a string)"),
    ('missing-capacity', '    capacity: 1 GiB\n', '',
     "hw.yaml:13: memories[1]: missing required field 'capacity' (a bytes quantity such as '80 GiB' or '50 MB')"),
    ('missing-source', '    bandwidth: 100 GB/s\n    source: s\n', '    bandwidth: 100 GB/s\n',
     "hw.yaml:13: memories[1]: missing required field 'source' (a string)"),
    ('missing-gpu-section', 'gpu: {sms: 2, max_blocks_per_sm: 4, launch_overhead: 2 us, source: s}\n', '',
     "hw.yaml:1: missing required section 'gpu' (kind: gpu needs sms, max_blocks_per_sm, launch_overhead)"),
    ('negative-size', 'capacity: 64 KiB', 'capacity: -64 KiB',
     "hw.yaml:8: memories[0].capacity: found '-64 KiB', expected a value > 0"),
    ('zero-size', 'capacity: 64 KiB', 'capacity: 0 B',
     "hw.yaml:8: memories[0].capacity: found '0 B', expected a value > 0"),
    ('zero-bandwidth', 'bandwidth: 100 GB/s', 'bandwidth: 0 GB/s',
     "hw.yaml:16: memories[1].bandwidth: found '0 GB/s', expected a value > 0"),
    ('negative-latency', '    bandwidth: 1 TB/s\n', '    bandwidth: 1 TB/s\n    latency: -1 ns\n',
     "hw.yaml:12: memories[0].latency: found '-1 ns', expected a value >= 0"),
    ('parent-missing', 'parent: hbm', 'parent: dram',
     "hw.yaml:10: memories[0].parent: found parent 'dram', expected one of the memory levels: hbm, sram"),
    ('parent-self', 'parent: hbm', 'parent: sram',
     "hw.yaml:10: memories[0].parent: level 'sram' names itself as its parent"),
    ('cycle', '    bandwidth: 100 GB/s\n', '    bandwidth: 100 GB/s\n    parent: sram\n',
     'hw.yaml:10: memories[0].parent: memory levels form a cycle (sram -> hbm -> sram), expected a hierarchy ending at a level without parent'),
    ('unit-wrong-kind', 'bandwidth: 100 GB/s', 'bandwidth: 80 GiB',
     "hw.yaml:16: memories[1].bandwidth: found '80 GiB' ('GiB' is a unit of bytes), expected a bandwidth quantity such as '3.35 TB/s' or '64 GiB/s'"),
    ('unit-unknown', 'capacity: 1 GiB', 'capacity: 1 GiBB',
     "hw.yaml:15: memories[1].capacity: found '1 GiBB' (unknown unit 'GiBB'), expected a bytes quantity such as '80 GiB' or '50 MB'"),
    ('unit-not-a-number', 'capacity: 1 GiB', 'capacity: lots',
     "hw.yaml:15: memories[1].capacity: found 'lots', expected a bytes quantity such as '80 GiB' or '50 MB'"),
    ('rate-unit-wrong', 'peak: 10 TFLOP/s', 'peak: 10 TB/s',
     "hw.yaml:21: compute[0].rates.bf16.peak: found '10 TB/s' ('TB/s' is a unit of bandwidth), expected a rate quantity such as '989 TFLOP/s' or '1979 TOPS'"),
    ('bad-version', 'version: 1', 'version: 2',
     'hw.yaml:1: version: found version 2, expected one of 1'),
    ('version-string', 'version: 1', "version: '1'",
     "hw.yaml:1: version: found str '1', expected an integer"),
    ('bad-kind-enum', 'kind: gpu\n', 'kind: gpx\n',
     "hw.yaml:3: kind: found str 'gpx', expected one of: gpu, system, storage, dataflow, accelerator; did you mean 'gpu'?"),
    ('bad-memory-kind', 'kind: dram', 'kind: hbm',
     "hw.yaml:14: memories[1].kind: found str 'hbm', expected one of: scratchpad, cache, dram, flash"),
    ('cache-without-section', 'kind: dram', 'kind: cache',
     "hw.yaml:13: memories[1]: kind 'cache' needs a 'cache' section (line, sector, associativity)"),
    ('flash-without-section', 'kind: dram', 'kind: flash',
     "hw.yaml:13: memories[1]: kind 'flash' needs a 'flash' section (page, channels, channel_bandwidth, latency_to_first_byte, queue_depth)"),
    ('max-per-block-too-big', '    instances: 2\n', '    instances: 2\n    max_per_block: 65 KiB\n',
     'hw.yaml:10: memories[0].max_per_block: found 66560 B, expected at most the capacity (65536 B)'),
    ('achievable-above-peak', 'peak: 10 TFLOP/s,', 'peak: 10 TFLOP/s, achievable: 11 TFLOP/s, achievable_source: m,',
     'hw.yaml:21: compute[0].rates.bf16.achievable: found 11 TFLOP/s, expected at most the peak (10 TFLOP/s)'),
    ('achievable-without-source', 'peak: 10 TFLOP/s,', 'peak: 10 TFLOP/s, achievable: 9 TFLOP/s,',
     "hw.yaml:21: compute[0].rates.bf16: missing required field 'achievable_source' (a string saying where the achievable rate was measured)"),
    ('empty-rates', '    rates:\n      bf16: {peak: 10 TFLOP/s, source: s}\n', '    rates: {}\n',
     'hw.yaml:20: compute[0].rates: found no rates, expected at least one instruction class'),
    ('rate-not-mapping', 'bf16: {peak: 10 TFLOP/s, source: s}', 'bf16: 10 TFLOP/s',
     "hw.yaml:21: compute[0].rates.bf16: found str '10 TFLOP/s', expected a mapping"),
    ('link-unknown-endpoint', 'compute:\n', 'links:\n  - {name: pcie, kind: pcie, between: [hbm, host], bandwidth: 64 GB/s, source: s}\ncompute:\n',
     "hw.yaml:19: links[0].between: found endpoint 'host', expected one of the memory levels: hbm, sram"),
    ('link-same-endpoints', 'compute:\n', 'links:\n  - {name: loop, kind: noc, between: [hbm, hbm], bandwidth: 64 GB/s, source: s}\ncompute:\n',
     'hw.yaml:19: links[0].between: found [hbm, hbm], expected two different memory levels'),
    ('link-between-three', 'compute:\n', 'links:\n  - {name: x, kind: noc, between: [hbm, sram, hbm], bandwidth: 64 GB/s, source: s}\ncompute:\n',
     "hw.yaml:19: links[0].between: found ['hbm', 'sram', 'hbm'], expected a list of two level names"),
    ('bandwidth-scope-bad', 'bandwidth: 1 TB/s', 'bandwidth: {read: 1 TB/s, scope: each}',
     "hw.yaml:11: memories[0].bandwidth.scope: found str 'each', expected one of: aggregate, per_instance"),
    ('flash-compute-missing', '    bandwidth: 100 GB/s\n    source: s\n', '    bandwidth: 100 GB/s\n    source: s\n  - {name: ssd, kind: flash, capacity: 1 TB, bandwidth: 7 GB/s, source: s, flash: {page: 4 KiB, channels: 8, channel_bandwidth: 1 GB/s, latency_to_first_byte: 50 us, queue_depth: 32, compute: engine, source: s}}\n',
     "hw.yaml:18: memories[2].flash: flash.compute names 'engine', expected one of the compute units: tensor"),
    ('duplicate-rate-across-units', '      bf16: {peak: 10 TFLOP/s, source: s}\n', '      bf16: {peak: 10 TFLOP/s, source: s}\n  - name: other\n    rates:\n      bf16: {peak: 1 TFLOP/s, source: s}\n',
     "hw.yaml:23: compute[1].rates: found instruction class 'bf16' again (already in compute unit 'tensor'), expected each instruction class in one unit only"),
    ('empty-memories', 'memories:\n  - name: sram', 'memories: []\nunused:\n  - name: sram',
     'hw.yaml:5: memories: found an empty list, expected at least one entry'),
    ('memory-entry-not-mapping', '  - name: sram\n', '  - sram\n  - name: sram\n',
     "hw.yaml:6: memories[0]: found str 'sram', expected a mapping"),
    ('empty-string-name', 'name: toy', "name: ''",
     "hw.yaml:2: name: found str '', expected a non-empty string"),
    ('sources-not-strings', 'kind: gpu\n', 'kind: gpu\nsources: [1]\n',
     'hw.yaml:4: sources[0]: found 1, expected a non-empty string'),
    ('dataflow-without-fabric', 'kind: gpu\n', 'kind: dataflow\n',
     "hw.yaml:1: missing required section 'fabric' (kind: dataflow)"),
]

# (case id, whole document, exact message)
WHOLE = [
    ('empty-file', '',
     'hw.yaml:1: found an empty document, expected a mapping (a hardware description)'),
    ('comment-only', '# nothing here\n',
     'hw.yaml:1: found an empty document, expected a mapping (a hardware description)'),
    ('list-root', '- a\n- b\n',
     'hw.yaml:1: found a list, expected a mapping (a hardware description)'),
    ('scalar-root', 'just a string\n',
     "hw.yaml:1: found str 'just a string', expected a mapping (a hardware description)"),
    ('yaml-syntax', 'version: 1\nname: [toy\n',
     "hw.yaml:3: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    ('yaml-tab-indent', 'version: 1\nmemories:\n\t- name: x\n',
     "hw.yaml:3: invalid YAML: found character '\\t' that cannot start any token"),
    ('unhashable-key', '? [a, b]\n: 1\n',
     "hw.yaml:1: found an unhashable key ['a', 'b'], expected a plain key"),
]


def test_base_document_is_valid():
    hw = parse_hardware(BASE, "hw.yaml")
    assert [m.name for m in hw.memories] == ["sram", "hbm"]


def test_table_is_large_enough():
    assert len(EDITS) + len(WHOLE) >= 25
    assert len({case[0] for case in EDITS + WHOLE}) == len(EDITS) + len(WHOLE)


@pytest.mark.parametrize("case, old, new, message", EDITS, ids=[c[0] for c in EDITS])
def test_malformed_edit(case, old, new, message):
    assert BASE.count(old) == 1, f"{case}: the edit must apply exactly once"
    with pytest.raises(SpecError) as info:
        parse_hardware(BASE.replace(old, new), "hw.yaml")
    assert str(info.value) == message
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case, text, message", WHOLE, ids=[c[0] for c in WHOLE])
def test_malformed_whole(case, text, message):
    with pytest.raises(SpecError) as info:
        parse_hardware(text, "hw.yaml")
    assert str(info.value) == message


@pytest.mark.parametrize("case, old, new, message", EDITS[::6], ids=[c[0] for c in EDITS[::6]])
def test_cli_validate_prints_the_same_line(tmp_path, capsys, case, old, new, message):
    path = tmp_path / "hw.yaml"
    path.write_text(BASE.replace(old, new))
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    expected = message.replace("hw.yaml", str(path), 1)
    assert captured.err == f"memsim: error: {expected}\n"
    assert captured.out == ""
