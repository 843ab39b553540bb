"""The outgoing side of a replay, without sockets: deltas of several items and parts interleaved through
the tight loop and frame by frame, ending a session, the next deadline, JSON for the wire (UTF-8, or
escaped where a client's lone surrogate is echoed), and recorded errors and metadata as they are patched."""

from __future__ import annotations

import base64
import json

import pytest

from mockrealtime.core.cassette import Cassette, Close, RecordedEvent, Session
from mockrealtime.core.engine import CloseFrame, ReplaySession


def srv(at_ms: float, n: int, body: dict) -> RecordedEvent:
    return RecordedEvent.make("server", at_ms, {"event_id": f"event_{n}", **body})


def created() -> RecordedEvent:
    """The session.created every recording here opens with."""
    return RecordedEvent.make("server", 0, {"type": "session.created", "event_id": "event_0", "session": {"type": "realtime"}})


def audio(item: str, n_bytes: int) -> dict:
    return {"type": "response.output_audio.delta", "response_id": "resp_1", "item_id": item, "output_index": 0,
            "content_index": 0, "delta": base64.b64encode(bytes(n_bytes)).decode()}


def text(kind: str, item: str, index: int, delta: str | None) -> dict:
    body = {"type": kind, "response_id": "resp_1", "item_id": item, "output_index": 0, "content_index": index}
    return body if delta is None else {**body, "delta": delta}


TRANSCRIPT = "response.output_audio_transcript.delta"
TEXT = "response.output_text.delta"


def interleaved() -> Cassette:
    """Deltas of two items and of two parts of one item, back to back, the run ending on a delta."""
    events = [created(),
              RecordedEvent.make("client", 1, {"type": "response.create"})]
    bodies = [{"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "output": []}}]
    for k in range(2):
        bodies.append({"type": "response.output_item.added", "response_id": "resp_1", "output_index": k,
                       "item": {"id": f"item_{k}", "type": "message", "role": "assistant", "content": []}})
    bodies += [{"type": "response.content_part.added", "response_id": "resp_1", "item_id": "item_0", "output_index": 0,
                "content_index": 0, "part": {"type": "audio"}},
               {"type": "response.content_part.added", "response_id": "resp_1", "item_id": "item_0", "output_index": 0,
                "content_index": 1, "part": {"type": "text"}},
               {"type": "response.content_part.added", "response_id": "resp_1", "item_id": "item_1", "output_index": 1,
                "content_index": 0, "part": {"type": "audio"}}]
    bodies += [audio("item_0", 4800), audio("item_1", 480), audio("item_0", 480), text(TRANSCRIPT, "item_0", 0, "a"),
               text(TEXT, "item_0", 1, "b"), text(TRANSCRIPT, "item_0", 0, "c"), text(TRANSCRIPT, "item_1", 0, "d"),
               text(TRANSCRIPT, "item_0", 0, None), audio("item_1", 4800), text(TEXT, "item_0", 1, "e")]
    events += [srv(2 + i / 10, i + 1, body) for i, body in enumerate(bodies)]
    return Cassette(name="mix", dialect="ga", sessions=[Session(events)])


def play(as_bytes: bool, chunk: int | None) -> tuple[list, ReplaySession]:
    engine = ReplaySession(interleaved(), connection=2, as_bytes=as_bytes)
    engine.start(0.0)
    sent = list(engine.pop_due(0.0))
    engine.feed('{"type":"response.create"}', 1.0)
    while True:
        got = engine.pop_due(1.0, chunk)
        assert chunk is None or len(got) <= chunk
        sent += got
        if not got or chunk is None:
            break
    return [json.loads(f) for f in sent], engine


@pytest.mark.parametrize("chunk", [None, 1, 2, 3, 5])
def test_interleaved_deltas_of_items_and_parts_keep_each_ones_clock_and_text_in_the_tight_loop(chunk):
    fast_frames, fast = play(True, chunk)
    slow_frames, slow = play(False, chunk)
    assert fast_frames == slow_frames and len(fast_frames) == 1 + 6 + 10
    expected = {"item_MR2x0": pytest.approx(110.0), "item_MR2x1": pytest.approx(110.0)}
    assert fast.model.audio_ms == slow.model.audio_ms == expected
    for engine in (fast, slow):
        parts = {(item, i): p.text for item, out in engine.model.outputs.items() for i, p in out.parts.items()}
        assert parts == {("item_MR2x0", 0): "ac", ("item_MR2x0", 1): "be", ("item_MR2x1", 0): "d"}
        assert engine.model.assistant_audio and engine.finished


def test_a_limit_caps_the_frames_the_tight_loop_hands_out():
    engine = ReplaySession(interleaved(), as_bytes=True)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.feed('{"type":"response.create"}', 1.0)
    assert [len(engine.pop_due(1.0, n)) for n in (7, 3, 2, 100)] == [7, 3, 2, 4]


# -- ending, deadlines ---------------------------------------------------------------------------------------

def paced(pace: float = 1.0) -> ReplaySession:
    engine = ReplaySession(interleaved(), pace=pace)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "response.create"}, 10.0)
    return engine


def test_end_drops_what_is_queued_and_sends_one_error_then_the_close():
    engine = paced()
    engine.pop_due(11.0)
    engine.end({"type": "error", "error": {"type": "server_error", "code": "c", "message": "m", "param": None,
                                           "event_id": None}}, 1011, "going away", 12.0)
    assert engine.next_deadline() == 12.0
    got = engine.pop_due(12.0)
    assert [json.loads(f)["type"] for f in got[:-1]] == ["error"] and got[-1] == CloseFrame(1011, "going away")
    assert json.loads(got[0])["event_id"].startswith("event_MR000") and engine.closed


def test_the_next_deadline_is_the_earlier_of_the_recording_and_the_answers():
    engine = paced()
    # the response's first frame keeps its recorded delay after the trigger (2 ms - 1 ms)
    assert engine.next_deadline() == pytest.approx(11.0)
    engine.receive({"type": "input_audio_buffer.clear"}, 10.5)  # an answer due now
    assert engine.next_deadline() == 10.5
    engine.pop_due(10.5)
    assert engine.next_deadline() == pytest.approx(11.0)
    engine.pop_due(11.0)
    assert engine.next_deadline() == pytest.approx(11.1)  # recorded 0.1 ms apart, at pace 1
    slow = paced(pace=2.0)
    slow.pop_due(12.0)
    assert slow.next_deadline() == pytest.approx(12.2)


def test_after_a_cancel_what_the_recording_holds_next_is_not_delayed_by_the_dropped_rest():
    engine = paced(pace=100.0)  # the response would take 150 ms of recorded time
    engine.pop_due(110.0)
    engine.receive({"type": "response.cancel"}, 120.0)
    engine.pop_due(120.0)
    engine.receive({"type": "input_audio_buffer.clear"}, 121.0)
    assert engine.next_deadline() == 121.0


# -- the wire text ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("as_bytes", [False, True])
def test_answers_are_compact_utf8_and_a_lone_surrogate_is_escaped_not_broken(as_bytes):
    engine = ReplaySession(interleaved(), as_bytes=as_bytes)
    engine.start(0.0)
    engine.pop_due(0.0)
    item = {"id": "x", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "café"}]}
    engine.receive({"type": "conversation.item.create", "item": item}, 1.0)
    plain = engine.pop_due(1.0)[0]
    wire = plain.decode() if as_bytes else plain
    assert isinstance(plain, bytes if as_bytes else str) and '"text":"café"' in wire and ", " not in wire
    lone = {**item, "id": "y", "content": [{"type": "input_text", "text": "a\ud800"}]}
    engine.receive({"type": "conversation.item.create", "item": lone}, 2.0)
    escaped = engine.pop_due(2.0)[0]
    wire = escaped.decode() if as_bytes else escaped
    assert '"text":"a\\ud800"' in wire and ", " not in wire
    wire.encode()  # a valid frame


def recorded_errors() -> Cassette:
    """A response whose recorded sends hold an error naming nothing and one naming another event."""
    def error(n: int, event_id):
        return srv(3 + n, n, {"type": "error", "error": {"type": "invalid_request_error", "code": f"c{n}", "message": "m",
                                                          "param": None, "event_id": event_id}})
    return Cassette(name="errs", dialect="ga", sessions=[Session([
        created(),
        RecordedEvent.make("client", 1, {"type": "response.create", "event_id": "rec_rc",
                                         "response": {"metadata": {"k": "recorded"}}}),
        srv(2, 1, {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "metadata": {"k": "recorded"}}}),
        error(2, "someone_else"),
        error(3, None),
        srv(6, 5, {"type": "error", "error": {"type": "invalid_request_error", "code": "c5", "message": "m", "param": None,
                                              "event_id": "another"}}),
        srv(7, 4, {"type": "response.done", "response": {"id": "resp_1", "status": "completed", "metadata": {"k": "recorded"}}}),
    ])])


@pytest.mark.parametrize("as_bytes", [False, True])
def test_recorded_errors_name_the_live_trigger_only_where_they_named_it_or_nothing(as_bytes):
    engine = ReplaySession(recorded_errors(), as_bytes=as_bytes)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "response.create", "event_id": "live_rc", "response": {"metadata": {"k": "live"}}}, 1.0)
    raw = engine.pop_due(1.0)
    got = [json.loads(f) for f in raw]
    assert [(e["type"], e.get("error", {}).get("event_id")) for e in got] == [
        ("response.created", None), ("error", "someone_else"), ("error", "live_rc"), ("error", "another"), ("response.done", None)]
    assert [e["event_id"] for e in got] == ["event_MR0x1", "event_MR0x2", "event_MR0x3", "event_MR0x5", "event_MR0x4"]
    assert all(isinstance(f, bytes if as_bytes else str) for f in raw)
    assert got[0]["response"] == {"id": "resp_MR0x1", "status": "in_progress", "metadata": {"k": "live"}}
    assert got[-1]["response"]["metadata"] == {"k": "live"}


def test_frames_after_a_client_chose_an_id_still_carry_this_connections_event_ids():
    engine = ReplaySession(recorded_errors())
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.choose("resp_1", "resp_chosen")
    engine.receive({"type": "response.create", "event_id": "live_rc", "response": {"metadata": {"k": "recorded"}}}, 1.0)
    got = [json.loads(f) for f in engine.pop_due(1.0)]
    assert [e["event_id"] for e in got] == ["event_MR0x1", "event_MR0x2", "event_MR0x3", "event_MR0x5", "event_MR0x4"]
    assert got[0]["response"]["id"] == got[-1]["response"]["id"] == "resp_chosen"
    assert got[2]["error"]["event_id"] == "live_rc"


def test_a_recorded_close_after_the_last_frame_is_sent_once_then_nothing():
    c = Cassette(name="c", dialect="ga", sessions=[Session([
        created(),
        RecordedEvent.make("client", 1, {"type": "response.create"}),
        srv(2, 1, {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}}),
    ], Close("server", 1000, ""))])
    engine = ReplaySession(c, pace=1)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "response.create"}, 1.0)
    assert len(engine.pop_due(2.0, 1)) == 1  # response.created; the close is still to go
    engine.receive({"type": "input_audio_buffer.clear"}, 3.0)
    got = engine.pop_due(3.0)
    assert got == [CloseFrame(1000, "")]  # the close the recording shows comes first, then nothing
    assert engine.pop_due(1e9) == [] and engine.next_deadline() is None
    assert CloseFrame(1000, "") != CloseFrame(1000, "x") and CloseFrame(1000, "") != (1000, "")


# -- what the first re-run left alive ---------------------------------------------------------------------------

def call_then_close(close: Close | None = None) -> Cassette:
    """A function call whose arguments stream in three deltas, then (optionally) the server closing."""
    item = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "f", "arguments": ""}
    bodies = [{"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "output": []}},
              {"type": "response.output_item.added", "response_id": "resp_1", "output_index": 0, "item": item}]
    bodies += [{"type": "response.function_call_arguments.delta", "response_id": "resp_1", "item_id": "fc_1",
                "output_index": 0, "call_id": "call_1", "delta": d} for d in ('{"a"', ": ", "1}")]
    bodies += [audio("item_x", 480), audio("item_x", 480)]
    events = [created(),
              RecordedEvent.make("client", 1, {"type": "response.create"})]
    events += [srv(2 + i, i + 1, body) for i, body in enumerate(bodies)]
    return Cassette(name="call", dialect="ga", sessions=[Session(events, close)])


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_cancel_mid_arguments_reports_the_arguments_sent_so_far(as_bytes):
    engine = ReplaySession(call_then_close(), pace=1, as_bytes=as_bytes)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "response.create"}, 10.0)
    engine.pop_due(14.5)  # response.created, the item, the first two deltas (recorded 1 ms apart)
    engine.receive({"type": "response.cancel"}, 15.0)
    got = [json.loads(f) for f in engine.pop_due(1e9)]
    (done,) = [e for e in got if e["type"] == "response.function_call_arguments.done"]
    assert done["arguments"] == '{"a": '
    assert not [e for e in got if e["type"].endswith(".delta")]  # the cancelled rest is never sent


def test_the_tight_loop_leaves_the_recorded_close_to_go_out_after_the_last_delta():
    engine = ReplaySession(call_then_close(Close("server", 1000, "")), as_bytes=True)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "response.create"}, 1.0)
    got = engine.pop_due(1.0)
    assert all(isinstance(f, bytes) for f in got[:-1]) and got[-1] == CloseFrame(1000, "") and len(got) == 8


def test_paced_utf8_frames_still_go_out_at_their_recorded_times():
    engine = ReplaySession(call_then_close(), pace=1, as_bytes=True)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "response.create"}, 10.0)
    assert [len(engine.pop_due(t)) for t in (14.5, 16.5, 1e9)] == [4, 2, 1]  # the audio deltas are due at 16 and 17 ms


def test_an_answer_not_yet_due_waits_and_a_run_due_first_goes_first():
    engine = ReplaySession(call_then_close(), pace=1)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "response.create"}, 10.0)  # first frame due at 11
    engine.receive({"type": "input_audio_buffer.clear"}, 20.0)  # answered at 20
    assert engine.next_deadline() == pytest.approx(11.0)
    assert engine.pop_due(10.5) == []
    first = [json.loads(f)["type"] for f in engine.pop_due(11.0)]
    assert first == ["response.created"]
    assert [json.loads(f)["type"] for f in engine.pop_due(19.0)] == [
        "response.output_item.added", *["response.function_call_arguments.delta"] * 3, *["response.output_audio.delta"] * 2]
    assert [json.loads(f)["type"] for f in engine.pop_due(20.0)] == ["input_audio_buffer.cleared"]
    idle = ReplaySession(call_then_close())
    idle.start(0.0)
    idle.pop_due(0.0)
    idle.receive({"type": "input_audio_buffer.clear"}, 30.0)
    assert idle.pop_due(29.0) == [] and len(idle.pop_due(30.0)) == 1


def test_a_client_event_after_end_is_queued_behind_the_close_without_failing():
    engine = paced()
    engine.end({"type": "error", "error": {"type": "server_error", "code": "c", "message": "m", "param": None,
                                           "event_id": None}}, 1011, "bye", 12.0)
    engine.receive({"type": "response.create"}, 13.0)
    got = engine.pop_due(1e9)
    assert json.loads(got[0])["type"] == "error" and got[1] == CloseFrame(1011, "bye")


def test_events_the_engine_makes_are_numbered_without_gaps():
    engine = ReplaySession(interleaved())
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "conversation.item.delete", "item_id": "nope"}, 1.0)  # an error the model makes
    engine.receive({"type": "response.create", "response": {"tool_choice": "required"}}, 1.5)  # a divergence's error
    engine.receive({"type": "input_audio_buffer.clear"}, 2.0)
    assert [json.loads(f)["event_id"] for f in engine.pop_due(2.0)] == [
        "event_MR000000000000000001", "event_MR000000000000000002", "event_MR000000000000000003"]


def test_a_cancel_at_pace_zero_stops_the_rest_in_the_utf8_path_too():
    engine = ReplaySession(call_then_close(), as_bytes=True)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "response.create"}, 1.0)
    assert len(engine.pop_due(1.0, 3)) == 3  # response.created, the item, the first arguments delta
    engine.receive({"type": "response.cancel"}, 2.0)
    got = [json.loads(f) for f in engine.pop_due(2.0)]
    assert got[-1]["type"] == "response.done" and not [e for e in got if e["type"].endswith(".delta")]
    assert [e["arguments"] for e in got if e["type"] == "response.function_call_arguments.done"] == ['{"a"']
    kept = ReplaySession(with_answer_after(), as_bytes=True)  # rate_limits.updated keeps the run after a cancel
    kept.start(0.0)
    kept.pop_due(0.0)
    kept.receive({"type": "response.create"}, 1.0)
    assert len(kept.pop_due(1.0, 1)) == 1
    kept.receive({"type": "response.cancel"}, 2.0)
    rest = [json.loads(f)["type"] for f in kept.pop_due(2.0)]
    assert sorted(rest) == ["rate_limits.updated", "response.done"]  # and no delta of the cancelled response


def test_an_arguments_delta_without_text_adds_nothing():
    item = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "f", "arguments": ""}
    c = Cassette(name="args", dialect="ga", sessions=[Session([
        created(),
        RecordedEvent.make("client", 1, {"type": "response.create"}),
        srv(2, 1, {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "output": []}}),
        srv(3, 2, {"type": "response.output_item.added", "response_id": "resp_1", "output_index": 0, "item": item}),
        srv(4, 3, {"type": "response.function_call_arguments.delta", "response_id": "resp_1", "item_id": "fc_1", "output_index": 0}),
        srv(5, 4, {"type": "response.function_call_arguments.delta", "response_id": "resp_1", "item_id": "fc_1", "output_index": 0,
                   "delta": "{}"}),
    ])])
    engine = ReplaySession(c)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "response.create"}, 1.0)
    engine.pop_due(1.0)
    engine.receive({"type": "response.cancel"}, 2.0)
    (done,) = [json.loads(f) for f in engine.pop_due(2.0) if "arguments.done" in f]
    assert done["arguments"] == "{}"


def test_a_recorded_answer_after_a_response_waits_for_its_end_at_a_pace_under_one():
    engine = ReplaySession(with_answer_after(), pace=0.5)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "response.create"}, 100.0)  # 11 recorded ms at pace 0.5: ends at 105.5
    engine.receive({"type": "output_audio_buffer.clear"}, 101.0)
    assert [json.loads(f)["type"] for f in engine.pop_due(106.0)][-1] == "output_audio_buffer.cleared"


def test_a_recorded_answer_after_end_does_not_fail():
    from test_engine_paths import clear_then_response
    engine = ReplaySession(clear_then_response(), pace=1)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.end({"type": "error", "error": {"type": "server_error", "code": "c", "message": "m", "param": None,
                                           "event_id": None}}, 1011, "bye", 5.0)
    engine.receive({"type": "output_audio_buffer.clear"}, 6.0)
    assert engine.pop_due(1e9)[1] == CloseFrame(1011, "bye")


def with_answer_after() -> Cassette:
    """A response at recorded times, with an event of no response after it, then a recorded answer the model
    cannot make (output_audio_buffer.clear)."""
    bodies = [{"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "output": []}},
              audio("item_x", 480), audio("item_x", 480), {"type": "rate_limits.updated", "rate_limits": []}]
    events = [created(),
              RecordedEvent.make("client", 1, {"type": "response.create"})]
    events += [srv(at, i + 1, body) for i, (at, body) in enumerate(zip((2, 3, 4, 12), bodies, strict=True))]
    events += [RecordedEvent.make("client", 13, {"type": "output_audio_buffer.clear"}), srv(14, 9, {"type": "output_audio_buffer.cleared"})]
    return Cassette(name="after", dialect="ga", sessions=[Session(events)])


def test_after_a_cancel_a_recorded_answer_waits_for_what_the_recording_still_sends_at_pace():
    engine = ReplaySession(with_answer_after(), pace=2.0)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "response.create"}, 100.0)  # the run spans 10 recorded ms: 20 ms at pace 2
    engine.pop_due(102.0)
    engine.receive({"type": "response.cancel"}, 103.0)
    engine.pop_due(103.0)
    engine.receive({"type": "output_audio_buffer.clear"}, 104.0)
    assert engine.pop_due(121.9) == []  # the cancelled deltas are skipped; rate_limits.updated is due at 122
    assert [json.loads(f)["type"] for f in engine.pop_due(122.0)] == ["rate_limits.updated", "output_audio_buffer.cleared"]


def test_an_input_transcription_replayed_is_what_the_session_model_keeps():
    from test_engine_paths import housekeeping_cassette, silence
    engine = ReplaySession(housekeeping_cassette())
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "input_audio_buffer.append", "audio": silence(200)}, 1.0)
    engine.receive({"type": "input_audio_buffer.commit"}, 2.0)
    engine.pop_due(2.0)
    assert engine.model.transcripts == {"item_MR0xrec2": "hello"}


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_recorded_delta_that_names_no_item_is_replayed_as_recorded(as_bytes):
    c = Cassette(name="noitem", dialect="ga", sessions=[Session([
        created(),
        RecordedEvent.make("client", 1, {"type": "response.create"}),
        srv(2, 1, {"type": "response.output_text.delta", "response_id": "resp_1", "output_index": 0, "content_index": 0,
                   "delta": "hi"}),
        srv(3, 2, {"type": "response.output_audio.delta", "response_id": "resp_1", "output_index": 0, "content_index": 0,
                   "delta": base64.b64encode(bytes(480)).decode()}),
    ])])
    engine = ReplaySession(c, as_bytes=as_bytes)
    engine.start(0.0)
    engine.pop_due(0.0)
    engine.receive({"type": "response.create"}, 1.0)
    got = [json.loads(f) for f in engine.pop_due(1.0)]
    assert [(e["type"], "item_id" in e) for e in got] == [("response.output_text.delta", False),
                                                          ("response.output_audio.delta", False)]
