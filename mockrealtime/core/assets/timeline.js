// mockrealtime show --html: play the stretch of a track a block or a line holds.
// data-clip="AUDIO_ID START_MS END_MS" is written by timeline_html.py; nothing here reads cassette text.
(function () {
  "use strict";
  let playing = null; // {audio, endS, marks}

  function stop() {
    if (!playing) return;
    playing.audio.pause();
    playing.marks.forEach((el) => el.classList.remove("playing"));
    playing = null;
  }

  function watch() {
    if (!playing) return;
    if (playing.audio.paused || playing.audio.currentTime >= playing.endS) { stop(); return; }
    requestAnimationFrame(watch);
  }

  document.addEventListener("click", (event) => {
    const el = event.target.closest("[data-clip]");
    if (!el) return;
    event.preventDefault();
    const [id, startMs, endMs] = el.dataset.clip.split(" ");
    const audio = document.getElementById(id);
    if (!audio) return;
    const again = playing && playing.audio === audio && playing.key === el.dataset.clip;
    stop();
    document.querySelectorAll("audio").forEach((a) => a.pause());
    if (again) return; // a second click stops
    const marks = Array.from(document.querySelectorAll('[data-clip="' + el.dataset.clip + '"]'))
      .map((m) => m.closest("tr") || m);
    marks.forEach((m) => m.classList.add("playing"));
    audio.currentTime = Number(startMs) / 1000;
    playing = { audio, endS: Number(endMs) / 1000, marks, key: el.dataset.clip };
    audio.play().then(() => requestAnimationFrame(watch), stop);
  });
})();
