// The UI's entry: a router over /ui/… paths (History API) and the sign-in dialog shown
// when the node asks for an API key.

import { Api } from "./api.js";
import { ClusterPage } from "./pages/cluster.js";
import { IndexPage, IndexesPage } from "./pages/indexes.js";
import { SearchPage } from "./pages/search.js";

const api = new Api();
const root = document.getElementById("page");
let page = null;
let pageKind = null;

function route(pathname) {
  const match = /^\/ui\/indexes\/([^/]+)\/?$/.exec(pathname);
  if (match) return { kind: `index:${match[1]}`, make: () => new IndexPage(root, api, navigate, decodeURIComponent(match[1])) };
  if (/^\/ui\/indexes\/?$/.test(pathname)) return { kind: "indexes", make: () => new IndexesPage(root, api, navigate) };
  if (/^\/ui\/cluster\/?$/.test(pathname)) return { kind: "cluster", make: () => new ClusterPage(root, api, navigate) };
  return { kind: "search", make: () => new SearchPage(root, api, navigate) };
}

function markCurrentLink(pathname) {
  for (const link of document.querySelectorAll("header nav a")) {
    const section = link.getAttribute("href");
    const current = section === "/ui/" ? !/^\/ui\/(indexes|cluster)/.test(pathname) : pathname.startsWith(section);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

const signOut = document.getElementById("sign-out");

async function render() {
  signOut.hidden = !api.apiKey;
  const { kind, make } = route(location.pathname);
  if (kind !== pageKind || kind !== "search") {
    page?.destroy();
    page = make();
    pageKind = kind;
  }
  markCurrentLink(location.pathname);
  await page.show();
}

function navigate(url) {
  history.pushState(null, "", url);
  render();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (!link || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", render);

// With auth on, the node answers 401 until the user gives a key: ask once, then reload
// the page's data with it.
const signIn = document.getElementById("sign-in");
const keyInput = document.getElementById("api-key-input");
let signingIn = false;
api.onUnauthorized = () => {
  if (signingIn) return;
  signingIn = true;
  keyInput.value = "";
  signIn.showModal();
};
signIn.addEventListener("close", () => {
  signingIn = false;
  if (signIn.returnValue === "sign-in") {
    api.apiKey = normalizeKey(keyInput.value.trim());
    render();
  }
});
signOut.addEventListener("click", () => {
  api.apiKey = null;
  render();
});

/** The key as the Authorization header wants it: the `encoded` form, or `id:api_key`. */
function normalizeKey(text) {
  return text.includes(":") ? btoa(text) : text;
}

render();
