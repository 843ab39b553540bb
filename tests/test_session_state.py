"""The session model driven directly, without an engine or sockets: what it learns from each server
event it observes, what it answers from that state (exact fields), and what a cancellation sends for
a response cut short in the middle of its items, parts and arguments."""

from __future__ import annotations

import base64

import pytest

from mockrealtime.core.cassette import RecordedEvent
from mockrealtime.core.events import Direction
from mockrealtime.protocol.session import OBSERVERS, SessionModel

PCM_100_MS = 4800  # bytes of 24 kHz mono PCM16 in 100 ms


def observe(model: SessionModel, *events) -> None:
    for event in events:
        OBSERVERS[event["type"]](model, event)


def audio_delta(item_id: str, n_bytes: int, dialect: str = "ga") -> dict:
    kind = "response.output_audio.delta" if dialect == "ga" else "response.audio.delta"
    return {"type": kind, "item_id": item_id, "content_index": 0, "delta": base64.b64encode(bytes(n_bytes)).decode()}


def conversation(model: SessionModel, *ids: str) -> None:
    for item_id in ids:
        observe(model, {"type": "conversation.item.added", "item": {"id": item_id, "type": "message", "role": "user"}})


def error(code, message, param, event_id=None) -> list[dict]:
    return [{"type": "error", "error": {"type": "invalid_request_error", "code": code, "message": message,
                                        "param": param, "event_id": event_id}}]


# -- a response cut short ---------------------------------------------------------------------------

def response_in_flight(dialect: str) -> SessionModel:
    """A response with three outputs, added out of order: a finished message (0), a function call with
    half its arguments (1), and a message whose audio part is open and whose text part is done (2)."""
    ga = dialect == "ga"
    model = SessionModel(dialect)
    observe(model, {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "output": []}})
    observe(model,
            {"type": "response.output_item.added", "output_index": 2,
             "item": {"id": "msg_2", "type": "message", "role": "assistant", "status": "in_progress", "content": []}},
            {"type": "response.output_item.added", "output_index": 0,
             "item": {"id": "msg_0", "type": "message", "role": "assistant", "status": "in_progress", "content": []}},
            {"type": "response.output_item.done", "output_index": 0,
             "item": {"id": "msg_0", "type": "message", "role": "assistant", "status": "completed",
                      "content": [{"type": "output_text", "text": "Done."}]}},
            {"type": "response.output_item.added", "output_index": 1,
             "item": {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "lookup",
                      "arguments": "", "status": "in_progress"}},
            {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": '{"city":'},
            {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": ' "Par'},
            {"type": "response.function_call_arguments.delta", "item_id": "fc_1"},  # no delta: nothing added
            {"type": "response.content_part.added", "item_id": "msg_2", "content_index": 0,
             "part": {"type": "audio", "transcript": ""}},
            {"type": "response.output_audio_transcript.delta" if ga else "response.audio_transcript.delta",
             "item_id": "msg_2", "content_index": 0, "delta": "Hel"},
            audio_delta("msg_2", PCM_100_MS, dialect),
            {"type": "response.output_audio_transcript.delta" if ga else "response.audio_transcript.delta",
             "item_id": "msg_2", "content_index": 0, "delta": "lo"},
            {"type": "response.content_part.added", "item_id": "msg_2", "content_index": 1,
             "part": {"type": "text", "text": ""}},
            {"type": "response.output_text.delta" if ga else "response.text.delta",
             "item_id": "msg_2", "content_index": 1, "delta": "Hi"},
            {"type": "response.content_part.done", "item_id": "msg_2", "content_index": 1,
             "part": {"type": "text", "text": "Hi"}})
    return model


def test_a_cancel_closes_what_is_open_in_output_order_and_reports_every_item_ga():
    model = response_in_flight("ga")
    fc = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "lookup",
          "arguments": '{"city": "Par', "status": "incomplete"}
    msg = {"id": "msg_2", "type": "message", "role": "assistant", "status": "incomplete",
           "content": [{"type": "output_audio", "transcript": "Hello"}, {"type": "output_text", "text": "Hi"}]}
    audio = {"response_id": "resp_1", "item_id": "msg_2", "output_index": 2, "content_index": 0}
    assert model.cancel("turn_detected") == [
        {"type": "response.function_call_arguments.done", "response_id": "resp_1", "item_id": "fc_1",
         "output_index": 1, "call_id": "call_1", "arguments": '{"city": "Par', "name": "lookup"},
        {"type": "response.output_item.done", "response_id": "resp_1", "output_index": 1, "item": fc},
        {"type": "conversation.item.done", "previous_item_id": None, "item": fc},
        {"type": "response.output_audio.done", **audio},
        {"type": "response.output_audio_transcript.done", **audio, "transcript": "Hello"},
        {"type": "response.content_part.done", **audio, "part": {"type": "audio", "transcript": "Hello"}},
        {"type": "response.output_item.done", "response_id": "resp_1", "output_index": 2, "item": msg},
        {"type": "conversation.item.done", "previous_item_id": None, "item": msg},
        {"type": "response.done", "response": {
            "id": "resp_1", "status": "cancelled", "status_details": {"type": "cancelled", "reason": "turn_detected"},
            "output": [{"id": "msg_0", "type": "message", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": "Done."}]}, fc, msg]}},
    ]


def test_a_cancel_in_beta_uses_beta_names_and_sends_no_item_done_events():
    model = response_in_flight("beta")
    events = model.cancel("client_cancelled")
    assert [e["type"] for e in events] == [
        "response.function_call_arguments.done", "response.output_item.done",
        "response.audio.done", "response.audio_transcript.done", "response.content_part.done",
        "response.output_item.done", "response.done"]
    assert "name" not in events[0]
    assert events[5]["item"]["content"] == [{"type": "audio", "transcript": "Hello"}, {"type": "text", "text": "Hi"}]
    assert events[-1]["response"]["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_text_part_left_open_gets_its_text_done_and_part_done(dialect):
    model = SessionModel(dialect)
    observe(model, {"type": "response.created", "response": {"id": "resp_1"}},
            {"type": "response.output_item.added", "output_index": 0,
             "item": {"id": "msg_1", "type": "message", "role": "assistant"}},
            {"type": "response.content_part.added", "item_id": "msg_1", "content_index": 0, "part": {"type": "text"}},
            {"type": "response.output_text.delta", "item_id": "msg_1", "content_index": 0, "delta": "Par"},
            {"type": "response.output_text.delta", "item_id": "msg_1", "content_index": 0, "delta": "tial"},
            {"type": "response.output_text.delta", "item_id": "msg_1", "content_index": 0})  # no delta: nothing
    ids = {"response_id": "resp_1", "item_id": "msg_1", "output_index": 0, "content_index": 0}
    text_done = "response.output_text.done" if dialect == "ga" else "response.text.done"
    assert model.cancel("turn_detected")[:2] == [
        {"type": text_done, **ids, "text": "Partial"},
        {"type": "response.content_part.done", **ids, "part": {"type": "text", "text": "Partial"}}]


def test_deltas_for_an_item_the_response_never_added_change_nothing():
    model = SessionModel("ga")
    observe(model, {"type": "response.created", "response": {"id": "resp_1"}},
            {"type": "response.function_call_arguments.delta", "item_id": "fc_x", "delta": "{}"},
            {"type": "response.content_part.added", "item_id": "msg_x", "content_index": 0, "part": {"type": "text"}},
            {"type": "response.content_part.done", "item_id": "msg_x", "content_index": 0})
    assert model.outputs == {}
    assert model.cancel("turn_detected") == [{"type": "response.done", "response": {
        "id": "resp_1", "status": "cancelled", "status_details": {"type": "cancelled", "reason": "turn_detected"},
        "output": []}}]


def test_a_text_delta_without_a_part_added_opens_a_text_part():
    model = SessionModel("ga")
    observe(model, {"type": "response.created", "response": {"id": "resp_1"}},
            {"type": "response.output_item.added", "output_index": 0,
             "item": {"id": "msg_1", "type": "message", "role": "assistant"}},
            {"type": "response.output_text.delta", "item_id": "msg_1", "content_index": 3, "delta": "x"})
    text_done, part_done = model.cancel("turn_detected")[:2]
    assert (text_done["type"], text_done["content_index"], text_done["text"]) == ("response.output_text.done", 3, "x")
    assert part_done["part"] == {"type": "text", "text": "x"}


def test_the_finished_item_is_a_copy_later_changes_to_the_event_do_not_reach():
    model = SessionModel("ga")
    done = {"type": "response.output_item.done", "output_index": 0,
            "item": {"id": "msg_1", "type": "message", "content": [{"type": "output_text", "text": "a"}]}}
    added = {"type": "response.output_item.added", "output_index": 0, "item": {"id": "msg_1", "type": "message",
                                                                               "content": []}}
    observe(model, {"type": "response.created", "response": {"id": "resp_1"}}, added)
    added["item"]["content"].append("changed")
    assert model.outputs["msg_1"].item["content"] == []
    conversation(model)
    observe(model, {"type": "conversation.item.added", "item": {"id": "msg_1", "type": "message", "content": []}}, done)
    done["item"]["content"][0]["text"] = "changed"
    assert model.outputs["msg_1"].done is True
    assert model.outputs["msg_1"].item["content"] == [{"type": "output_text", "text": "a"}]
    assert model.item_data["msg_1"]["content"] == [{"type": "output_text", "text": "a"}]


def test_a_function_call_added_as_output_makes_its_call_id_known():
    model = SessionModel("ga")
    observe(model, {"type": "response.created", "response": {"id": "resp_1"}},
            {"type": "response.output_item.added", "output_index": 0,
             "item": {"id": "fc_1", "type": "function_call", "call_id": "call_9"}},
            {"type": "response.output_item.added", "output_index": 1,
             "item": {"id": "msg_1", "type": "message", "call_id": "call_not_a_call"}},
            {"type": "response.output_item.added", "output_index": 2, "item": {"type": "message"}})
    assert model.call_ids == {"call_9"}
    assert set(model.outputs) == {"fc_1", "msg_1"}
    output = {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_9", "output": "{}"}}
    assert model.answer(output, "item_1")[0]["item"]["call_id"] == "call_9"


# -- audio sent, truncation ---------------------------------------------------------------------------

def assistant_with_audio(n_bytes: int = PCM_100_MS, recorded: bool = False) -> SessionModel:
    model = SessionModel("ga")
    observe(model, {"type": "conversation.item.added", "item": {"id": "msg_1", "type": "message", "role": "assistant"}})
    if recorded:  # a recorded event carries its decoded length
        delta = RecordedEvent(Direction.SERVER, 0, {"type": "response.output_audio.delta", "item_id": "msg_1",
                                                    "delta": ""}, audio_bytes=n_bytes)
        OBSERVERS[delta.type](model, delta)
    else:
        observe(model, audio_delta("msg_1", n_bytes))
    return model


def truncate(model: SessionModel, end, **kw) -> list[dict]:
    return model.answer({"type": "conversation.item.truncate", "item_id": "msg_1", "audio_end_ms": end, **kw})


@pytest.mark.parametrize("recorded", [False, True], ids=["live-delta", "recorded-delta"])
def test_audio_sent_is_counted_per_item_from_the_delta_or_its_recorded_length(recorded):
    model = assistant_with_audio(PCM_100_MS, recorded)
    assert model.audio_ms == {"msg_1": 100.0}
    assert model.assistant_audio is True
    assert truncate(model, 150) == error("invalid_value", "Audio content of 100ms is already shorter than 150ms",
                                         "audio_end_ms")


def test_a_truncate_exactly_at_the_audio_sent_is_allowed_and_keeps_the_content_index():
    model = assistant_with_audio()
    assert truncate(model, 100) == [{"type": "conversation.item.truncated", "item_id": "msg_1", "content_index": 0,
                                     "audio_end_ms": 100}]
    assert truncate(model, 50, content_index=2)[0]["content_index"] == 2
    assert truncate(model, 100.5)[0]["type"] == "error"  # not a rounding allowance: half a millisecond over fails


def test_after_a_truncation_the_item_holds_only_the_audio_up_to_the_cut():
    model = assistant_with_audio()
    observe(model, {"type": "conversation.item.truncated", "item_id": "msg_1", "content_index": 0, "audio_end_ms": 40})
    assert truncate(model, 60) == error("invalid_value", "Audio content of 40ms is already shorter than 60ms", "audio_end_ms")
    observe(model, {"type": "conversation.item.truncated", "item_id": "other", "audio_end_ms": 10},
            {"type": "conversation.item.truncated", "item_id": "msg_1", "audio_end_ms": None})
    assert "other" not in model.audio_ms and model.audio_ms["msg_1"] == 40.0


def test_an_assistant_item_without_audio_cannot_be_truncated():
    model = SessionModel("ga")
    observe(model, {"type": "conversation.item.added", "item": {"id": "msg_1", "type": "message", "role": "assistant"}})
    assert truncate(model, 0) == error("unsupported_content_type", "Only model output audio messages can be truncated", None)


def test_an_output_item_of_the_active_response_can_be_truncated_before_it_joins_the_conversation():
    model = SessionModel("ga")
    observe(model, {"type": "response.created", "response": {"id": "resp_1"}},
            {"type": "response.output_item.added", "output_index": 0,
             "item": {"id": "msg_1", "type": "message", "role": "assistant"}},
            audio_delta("msg_1", PCM_100_MS))
    assert truncate(model, 20)[0]["type"] == "conversation.item.truncated"


# -- the conversation as a list ----------------------------------------------------------------------

def test_deleting_items_keeps_the_order_and_the_end_of_the_conversation():
    model = SessionModel("ga")
    conversation(model, "a", "b", "c", "d")
    observe(model, {"type": "conversation.item.deleted", "item_id": "b"})
    assert model.item_order() == ["a", "c", "d"]
    observe(model, {"type": "conversation.item.deleted", "item_id": "d"})
    assert model.item_order() == ["a", "c"] and model.last_item == "c"
    conversation(model, "e")
    observe(model, {"type": "conversation.item.added", "previous_item_id": "a", "item": {"id": "f", "type": "message"}})
    assert model.item_order() == ["a", "f", "c", "e"]
    observe(model, {"type": "conversation.item.deleted", "item_id": "f"},
            {"type": "conversation.item.deleted", "item_id": 5}, {"type": "conversation.item.deleted", "item_id": "zz"})
    assert model.item_order() == ["a", "c", "e"]
    observe(model, {"type": "conversation.item.added", "previous_item_id": "root", "item": {"id": "g", "type": "message"}})
    assert model.item_order() == ["g", "a", "c", "e"]


def test_an_input_transcription_is_kept_per_item_and_an_empty_one_is_empty():
    model = SessionModel("ga")
    observe(model, {"type": "conversation.item.input_audio_transcription.completed", "item_id": "a", "transcript": "hi"},
            {"type": "conversation.item.input_audio_transcription.completed", "item_id": "b", "transcript": None})
    assert model.transcripts == {"a": "hi", "b": ""}


# -- answers from state, exact fields ---------------------------------------------------------------------

def test_a_commit_of_exactly_100_ms_makes_a_user_audio_item_after_the_last_one():
    model = SessionModel("ga", tag="007")
    conversation(model, "a")
    model.observe_client_audio(PCM_100_MS)
    item = {"id": "item_MR007000000000000001", "type": "message", "status": "completed", "role": "user",
            "content": [{"type": "input_audio", "transcript": None}]}
    assert model.answer({"type": "input_audio_buffer.commit"}) == [
        {"type": "input_audio_buffer.committed", "previous_item_id": "a", "item_id": item["id"]},
        {"type": "conversation.item.added", "previous_item_id": "a", "item": item},
        {"type": "conversation.item.done", "previous_item_id": "a", "item": item}]


def test_ids_the_model_invents_are_numbered_one_by_one_per_connection_tag():
    model = SessionModel("ga", tag="042")
    assert [model.new_id("item"), model.new_id("item"), model.new_id("resp")] == [
        "item_MR042000000000000001", "item_MR042000000000000002", "resp_MR042000000000000003"]


def test_a_cancel_naming_another_response_is_refused_and_naming_the_active_one_cancels_it():
    model = SessionModel("ga")
    observe(model, {"type": "response.created", "response": {"id": "resp_1"}})
    assert model.answer({"type": "response.cancel", "response_id": "resp_2", "event_id": "e1"}) == error(
        "response_cancel_not_active", "Cancellation failed: no active response found", None, "e1")
    assert model.answer({"type": "response.cancel", "response_id": "resp_1"})[-1]["response"]["status"] == "cancelled"


def test_not_found_errors_have_their_codes_params_and_show_a_non_string_id_as_sent():
    model = SessionModel("ga")
    conversation(model, "a")
    assert model.answer({"type": "conversation.item.retrieve", "item_id": 5, "event_id": 7}) == error(
        "item_retrieve_invalid_item_id", "Error retrieving item: the item with id '5' does not exist.", "item_id")
    assert model.answer({"type": "conversation.item.delete", "item_id": "zz"}) == error(
        "item_delete_invalid_item_id", "Error deleting item: the item with id 'zz' does not exist.", "item_id")
    assert model.answer({"type": "conversation.item.create", "previous_item_id": "zz", "item": {"type": "message"}}) == error(
        "invalid_value", "Previous item with id 'zz' does not exist.", "previous_item_id")
    assert model.answer({"type": "conversation.item.create",
                         "item": {"type": "function_call_output", "call_id": "call_x", "output": ""}}) == error(
        "invalid_value", "Tool call ID 'call_x' not found in conversation.", "item.call_id")


def test_an_item_created_at_the_root_goes_first():
    model = SessionModel("beta")
    conversation(model, "a")
    (echo,) = model.answer({"type": "conversation.item.create", "previous_item_id": "root",
                            "item": {"id": "b", "type": "message", "role": "user", "content": []}})
    assert echo == {"type": "conversation.item.created", "previous_item_id": None,
                    "item": {"id": "b", "type": "message", "role": "user", "content": [], "status": "completed",
                             "object": "realtime.item"}}


def test_a_retrieved_item_is_a_copy_of_the_conversation_s():
    model = SessionModel("ga")
    observe(model, {"type": "conversation.item.added",
                    "item": {"id": "a", "type": "message", "content": [{"type": "input_text", "text": "x"}]}})
    (retrieved,) = model.answer({"type": "conversation.item.retrieve", "item_id": "a"})
    retrieved["item"]["content"][0]["text"] = "changed"
    assert model.item_data["a"]["content"][0]["text"] == "x"


def test_a_part_done_closes_that_part_only():
    """Part 1 of one message and part 0 of another are done: cancel leaves both alone; part 5 was never added."""
    model = SessionModel("ga")
    observe(model, {"type": "response.created", "response": {"id": "resp_1"}},
            {"type": "response.output_item.added", "output_index": 0, "item": {"id": "a", "type": "message"}},
            {"type": "response.content_part.added", "item_id": "a", "content_index": 1, "part": {"type": "text"}},
            {"type": "response.content_part.done", "item_id": "a", "content_index": 1},
            {"type": "response.output_item.added", "output_index": 1, "item": {"id": "b", "type": "message"}},
            {"type": "response.content_part.added", "item_id": "b", "part": {"type": "text"}},
            {"type": "response.content_part.done", "item_id": "b"},
            {"type": "response.content_part.done", "item_id": "b", "content_index": 5})
    assert [e["type"] for e in model.cancel("turn_detected")] == [
        "response.output_item.done", "conversation.item.done", "response.output_item.done", "conversation.item.done",
        "response.done"]


def test_response_done_ends_the_active_response_only_if_it_names_it_or_nothing():
    model = SessionModel("ga")
    observe(model, {"type": "response.done", "response": {"id": "resp_0"}})  # none active: nothing to end
    observe(model, {"type": "response.created", "response": {"id": "resp_1"}},
            {"type": "response.done", "response": {"id": "resp_other"}})
    assert model.active_response_id == "resp_1"
    observe(model, {"type": "response.done", "response": {"id": "resp_1"}})
    assert model.active_response_id is None and model.outputs == {}
    observe(model, {"type": "response.created", "response": {"id": "resp_2"}}, {"type": "response.done"})
    assert model.active_response_id is None


def test_a_function_call_output_item_does_not_make_its_call_id_known():
    model = SessionModel("ga")
    observe(model, {"type": "conversation.item.added", "item": {"id": "o", "type": "function_call_output", "call_id": "call_1"}},
            {"type": "conversation.item.added", "item": {"id": "c", "type": "function_call", "call_id": "call_2"}},
            {"type": "conversation.item.added", "item": {"type": "message"}},
            {"type": "conversation.item.added", "item": "not an item"})
    assert model.call_ids == {"call_2"} and model.item_order() == ["o", "c"]


def test_items_without_an_id_get_the_hint_or_a_new_item_id_after_the_last_item():
    model = SessionModel("ga", tag="001")
    conversation(model, "a")
    hinted = model.answer({"type": "conversation.item.create", "item": {"type": "message", "id": 5}}, "item_hint")
    assert hinted[0] == {"type": "conversation.item.added", "previous_item_id": "a",
                         "item": {"id": "item_hint", "type": "message", "status": "completed"}}
    made = model.answer({"type": "conversation.item.create", "item": {"type": "message"}})
    assert made[0]["item"]["id"] == "item_MR001000000000000001"
    model.observe_client_audio(PCM_100_MS)
    assert model.answer({"type": "input_audio_buffer.commit"}, "item_c")[0]["item_id"] == "item_c"


def test_a_model_without_a_tag_numbers_ids_without_one():
    assert SessionModel("ga").new_id("item") == "item_MR000000000000001"


def test_session_update_before_any_session_created_is_the_update_without_the_model():
    model = SessionModel("ga")
    assert model.turn_detection == {}
    (updated,) = model.answer({"type": "session.update", "session": {"type": "realtime", "model": "gpt-other",
                                                                     "instructions": "Be brief."}})
    assert updated == {"type": "session.updated", "session": {"type": "realtime", "instructions": "Be brief."}}


def test_the_session_is_the_models_own_copy():
    model = SessionModel("ga")
    created = {"type": "session.created", "session": {"type": "realtime", "tools": [{"name": "a"}]}}
    observe(model, created)
    created["session"]["tools"][0]["name"] = "changed"
    update = {"type": "session.update", "session": {"tracing": {"workflow_name": "w"}, "tools": [{"name": "b"}]}}
    (updated,) = model.answer(update)
    update["session"]["tools"][0]["name"] = "changed"
    updated["session"]["tracing"]["workflow_name"] = "changed"
    assert model.session["tools"] == [{"name": "b"}] and model.session["tracing"] == {"workflow_name": "w"}
    response = {"id": "resp_1", "metadata": {"k": "v"}}
    observe(model, {"type": "response.created", "response": response})
    response["metadata"]["k"] = "changed"
    assert model.response == {"id": "resp_1", "metadata": {"k": "v"}}


def test_audio_sent_is_timed_in_the_session_s_output_format():
    model = SessionModel("ga")
    observe(model, {"type": "session.created", "session": {"type": "realtime", "audio": {
        "output": {"format": {"type": "audio/pcmu"}}}}})
    observe(model, audio_delta("msg_1", 800), {"type": "response.output_audio.delta", "item_id": "msg_1"})
    assert model.audio_ms == {"msg_1": 100.0}  # 8 kHz, one byte a sample; a delta without audio adds nothing


def test_each_deleted_item_s_neighbours_are_joined():
    model = SessionModel("ga")
    conversation(model, "a", "c")
    observe(model, {"type": "conversation.item.added", "previous_item_id": "a", "item": {"id": "b", "type": "message"}})
    observe(model, {"type": "conversation.item.deleted", "item_id": "c"})
    assert model.item_order() == ["a", "b"] and model.last_item == "b"
    conversation(model, "c", "d")
    for gone, left in (("b", ["a", "c", "d"]), ("c", ["a", "d"]), ("a", ["d"]), ("d", [])):
        observe(model, {"type": "conversation.item.deleted", "item_id": gone})
        assert model.item_order() == left
    assert model.last_item is None
