() => {
  // The chat page's own script (webui/chat.py runs it once on load). Two jobs:
  // 1. Like/dislike on the item cards: the cards are HTML inside chat messages, not gradio
  //    components, so a click is written into the hidden #crs-vote textbox as JSON and an input
  //    event hands it to the server; the button shows the verdict at once, as the widget's do,
  //    and the server's re-render confirms it.
  // 2. The latest exchange stays in view: when a reply arrives, the chat scrolls so the person's
  //    message (and their picture) sits at the top, with the reply and its cards below, instead of
  //    gradio's scroll to the very bottom, which hid the picture behind a tall row of cards.
  if (window.crsPage) return [];
  window.crsPage = { votes: 0 };

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("#crs-chat button[data-vote]");
    if (!button) return;
    const box = document.querySelector("#crs-vote textarea, #crs-vote input");
    if (!box) return;
    const card = button.closest(".crs-card");
    if (card) {
      for (const other of card.querySelectorAll("button[data-vote]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
    }
    window.crsPage.votes += 1;
    // The counter makes two clicks on the same button two inputs.
    box.value = JSON.stringify({ item: button.dataset.itemId, vote: button.dataset.vote, n: window.crsPage.votes });
    box.dispatchEvent(new Event("input", { bubbles: true }));
  });

  const scroller = (node) => {
    for (let el = node.parentElement; el; el = el.parentElement) {
      const style = getComputedStyle(el);
      if (/(auto|scroll)/.test(style.overflowY) && el.scrollHeight > el.clientHeight) return el;
    }
    return null;
  };
  let seen = "";
  const follow = () => {
    const chat = document.querySelector("#crs-chat");
    if (!chat) return;
    const rows = chat.querySelectorAll(".message-row");
    const users = chat.querySelectorAll(".message-row.user-row");
    // What changed: the number of messages (a turn arrived), not a re-render of the same turns
    // (a like re-renders every card and must not move the view).
    const key = `${rows.length}:${users.length}`;
    if (key === seen) return;
    seen = key;
    const last = users[users.length - 1];
    if (!last) return;
    const box = scroller(last);
    if (!box) return;
    box.scrollTop += last.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
  };
  let queued = false;
  new MutationObserver(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; follow(); });
  }).observe(document.body, { childList: true, subtree: true });
  return [];
}
