"use strict";

const STATUS_WORDS = {
  ok: "All seats are ready.",
  starting: "Seats are starting…",
  degraded: "Some seats are not answering.",
};

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderSeats(seats) {
  const body = document.querySelector("#seats tbody");
  body.replaceChildren(
    ...seats.map((seat) => {
      const row = document.createElement("tr");
      const name = cell(seat.name);
      if (seat.demo) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "demo model: noise";
        name.append(tag);
      }
      const state = cell(seat.state, `state-${seat.state}`);
      if (seat.reason) {
        const reason = document.createElement("span");
        reason.className = "reason";
        reason.textContent = seat.reason;
        state.append(reason);
      }
      row.append(name, cell(seat.model), state);
      return row;
    }),
  );
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("/api/health", { cache: "no-store" });
    const health = await response.json();
    status.textContent = STATUS_WORDS[health.status] || health.status;
    status.dataset.status = health.status;
    renderSeats(health.seats);
    const banner = document.getElementById("demo-banner");
    banner.hidden = !health.demo_hint;
    banner.textContent = health.demo_hint || "";
  } catch (error) {
    status.textContent = "The hub is not answering.";
    status.dataset.status = "degraded";
  }
}

refresh();
setInterval(refresh, 1000);
