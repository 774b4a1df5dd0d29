// runpod-testkit: the Job stats tab's charts. Locust's extended tab shows a table only; this
// puts the charts (rendered on the server, escaped there) under it and refreshes them while
// the tab is open. Nothing else on the page is touched.
(() => {
  const BOX_ID = "rp-job-stats-charts";
  const PLACE_MS = 500; // how often to check that the charts sit under the tab's table
  const REFRESH_MS = 5000; // a chart snapshot of an hour-long run takes about half a second
  let pending = false;
  let fetchedAt = 0;

  function tabIsOpen() {
    return new URLSearchParams(window.location.search).get("tab") === "job-stats";
  }

  function jobStatsTable() {
    return Array.from(document.querySelectorAll("table")).find((table) =>
      Array.from(table.querySelectorAll("thead th")).some((th) => th.textContent.trim() === "Job statistic"));
  }

  // The box under the table, made anew when the tab was (re)opened; null off the tab.
  function placeBox() {
    let box = document.getElementById(BOX_ID);
    const table = tabIsOpen() ? jobStatsTable() : undefined;
    if (!table) {
      if (box) box.remove();
      return null;
    }
    const anchor = table.closest(".MuiTableContainer-root") || table;
    if (!box || box.previousElementSibling !== anchor) {
      if (box) box.remove();
      box = document.createElement("section");
      box.id = BOX_ID;
      box.setAttribute("aria-label", "Job stats charts");
      anchor.after(box);
      fetchedAt = 0; // a new box: fill it now
    }
    return box;
  }

  async function tick() {
    const box = placeBox();
    if (!box || pending || Date.now() - fetchedAt < REFRESH_MS) return;
    pending = true;
    try {
      const reply = await fetch("./job-stats/charts", { cache: "no-store" });
      if (reply.ok) box.innerHTML = await reply.text();
      fetchedAt = Date.now();
    } finally {
      pending = false;
    }
  }

  tick();
  window.setInterval(tick, PLACE_MS);
})();
