// The model that answers in this tab, and its queue.
//
// wllama runs one completion at a time: the Ask box, a council task (join.js) and the benchmark
// hook all go through `use`, which runs `fn(wllama)` after every earlier call has finished.
// Switching to the larger model goes through it too, so a switch never cuts an answer short.
export class TabModel {
  // `onBusy(waiting)`: told how many calls hold or wait for the model, whenever that changes.
  constructor(onBusy) {
    this.wllama = null;
    this.model = null; // its catalog entry
    this.onBusy = onBusy;
    this.turn = Promise.resolve();
    this.waiting = 0;
  }

  use(fn) {
    this.waiting += 1;
    this.onBusy(this.waiting);
    const turn = this.turn.then(() => fn(this.wllama));
    this.turn = turn.catch(() => {});
    return turn.finally(() => {
      this.waiting -= 1;
      this.onBusy(this.waiting);
    });
  }

  // The first model, once loaded; nothing can be waiting for it yet.
  start(wllama, model) {
    this.wllama = wllama;
    this.model = model;
  }

  // Another model takes over between answers; the one it replaces is let go.
  swap(wllama, model) {
    return this.use(async (old) => {
      this.wllama = wllama;
      this.model = model;
      await old.exit().catch(() => {});
    });
  }

  get name() {
    return this.model.name || this.model.path;
  }
}
