/* papers — the little JavaScript the site uses. Everything works without it except
 * the browser-side extras: ❤ interests (localStorage), copy buttons, TeX rendering,
 * "/" to focus search, auto-submitting the day picker. No inline scripts (CSP). */
(function () {
  "use strict";

  var KEY = "papers.interests.v1";
  var MAX_KEYWORDS = 500;
  var MAX_PAPERS = 1000;
  var PREFS = 20;

  // -- interests storage ---------------------------------------------------------------
  function empty() { return { version: 1, keywords: {}, papers: [] }; }

  function isValid(d) {
    if (!d || typeof d !== "object" || !d.keywords || typeof d.keywords !== "object" || Array.isArray(d.keywords) || !Array.isArray(d.papers)) return false;
    for (var k in d.keywords) {
      if (Object.prototype.hasOwnProperty.call(d.keywords, k) && !(typeof d.keywords[k] === "number" && isFinite(d.keywords[k]))) return false;
    }
    return true;
  }

  function load() {
    try {
      var d = JSON.parse(window.localStorage.getItem(KEY) || "null");
      if (isValid(d)) return d;
    } catch (e) { /* unreadable: start again */ }
    return empty();
  }

  function save(d) {
    try { window.localStorage.setItem(KEY, JSON.stringify(d)); return true; } catch (e) { return false; }
  }

  function ranked(d) {
    return Object.keys(d.keywords)
      .map(function (k) { return [k, d.keywords[k]]; })
      .filter(function (p) { return p[1] > 0; })
      .sort(function (a, b) { return b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0); });
  }

  function prefsString() {
    return ranked(load()).slice(0, PREFS).map(function (p) { return p[0].replace(/,/g, " "); }).join(",");
  }

  function recordPaper(el) {
    var id = el.getAttribute("data-paper-id");
    var kws;
    try { kws = JSON.parse(el.getAttribute("data-keywords") || "[]"); } catch (e) { return; }
    if (!id || !Array.isArray(kws)) return;
    var d = load();
    if (d.papers.indexOf(id) !== -1) return; // each paper counts once
    d.papers.push(id);
    if (d.papers.length > MAX_PAPERS) d.papers = d.papers.slice(-MAX_PAPERS);
    kws.forEach(function (k) {
      var word = String(k.keyword || "").trim().toLowerCase();
      var w = Number(k.weight);
      if (!word || !(w > 0)) return;
      d.keywords[word] = Math.round(((d.keywords[word] || 0) + w) * 1e4) / 1e4;
    });
    var all = ranked(d);
    if (all.length > MAX_KEYWORDS) {
      d.keywords = {};
      all.slice(0, MAX_KEYWORDS).forEach(function (p) { d.keywords[p[0]] = p[1]; });
    }
    save(d);
  }

  // -- ❤ order: carry the preference keywords in links and forms -----------------------
  function withParam(href, name, value) {
    var url = new URL(href, window.location.href);
    if (value) url.searchParams.set(name, value); else url.searchParams.delete(name);
    return url.pathname + url.search + url.hash;
  }

  function wirePrefs() {
    var prefs = prefsString();
    document.querySelectorAll("[data-prefs-link]").forEach(function (a) {
      a.setAttribute("href", withParam(a.getAttribute("href"), "prefs", prefs));
    });
    document.querySelectorAll("form").forEach(function (form) {
      var input = form.querySelector("[data-prefs-input]");
      if (!input) return;
      form.addEventListener("submit", function () {
        var sort = form.querySelector("[name=sort]");
        var wantsPrefs = !sort || sort.value === "prefs";
        input.value = wantsPrefs ? prefsString() : "";
        input.disabled = !input.value;
      });
    });
    // a shared "sort=prefs" link without keywords: use this reader's own
    if (prefs && document.querySelector("[data-no-prefs]")) {
      window.location.replace(withParam(window.location.href, "prefs", prefs));
    }
  }

  // -- interests page ---------------------------------------------------------------------
  function searchHref(word) { return "/search?q=" + encodeURIComponent('"' + word + '"'); }

  function renderInterests() {
    var cloud = document.getElementById("cloud");
    if (!cloud) return;
    var d = load();
    var all = ranked(d);
    var list = document.getElementById("prefs-list");
    var summary = document.getElementById("cloud-summary");
    var link = document.getElementById("prefs-search");
    cloud.textContent = "";
    list.textContent = "";
    if (!all.length) {
      var p = document.createElement("p");
      p.className = "muted";
      p.id = "cloud-empty";
      p.textContent = "Nothing yet — open a few papers.";
      cloud.appendChild(p);
      summary.textContent = "";
      link.hidden = true;
      return;
    }
    var shown = all.slice(0, 80);
    var max = shown[0][1];
    var top = {};
    all.slice(0, PREFS).forEach(function (p) { top[p[0]] = true; });
    shown.slice().sort(function (a, b) { return a[0] < b[0] ? -1 : 1; }).forEach(function (p) {
      var a = document.createElement("a");
      a.href = searchHref(p[0]);
      a.textContent = p[0];
      a.className = top[p[0]] ? "top" : "";
      a.style.fontSize = (0.85 + 1.6 * Math.pow(p[1] / max, 0.7)).toFixed(2) + "rem";
      a.title = "weight " + p[1].toFixed(2);
      a.setAttribute("data-weight", String(p[1]));
      cloud.appendChild(a);
    });
    all.slice(0, PREFS).forEach(function (p) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.className = "chip";
      a.href = searchHref(p[0]);
      a.textContent = p[0];
      li.appendChild(a);
      list.appendChild(li);
    });
    summary.textContent = d.papers.length + " paper" + (d.papers.length === 1 ? "" : "s") + " read · " + all.length + " keywords";
    var q = all.slice(0, 5).map(function (p) { return '"' + p[0] + '"'; }).join(" OR ");
    link.href = "/search?q=" + encodeURIComponent(q) + "&sort=prefs&prefs=" + encodeURIComponent(prefsString());
    link.hidden = false;
  }

  // -- recommendations from the papers read --------------------------------------------------
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function renderRecommendations() {
    var box = document.getElementById("recs-box");
    var list = document.getElementById("recs");
    if (!box || !list) return;
    var liked = load().papers.slice(-30);
    list.textContent = "";
    if (!liked.length || !window.fetch) { box.hidden = true; return; }
    fetch("/api/recommend", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ liked: liked, size: 10 })
    }).then(function (r) { return r.ok ? r.json() : { hits: [] }; }).then(function (data) {
      (data.hits || []).forEach(function (h) {
        var li = el("li", "hit");
        li.setAttribute("data-id", h.id);
        var title = el("h3", "hit-title");
        var a = el("a", "", h.title);
        a.href = "/paper/" + h.id;
        title.appendChild(a);
        li.appendChild(title);
        li.appendChild(el("div", "hit-meta", h.id + " · " + h.published + " · " + (h.categories || []).join(" ")));
        if (h.shared_keywords && h.shared_keywords.length) {
          var shared = el("div", "shared");
          shared.appendChild(el("span", "shared-label", "Shared keywords:"));
          h.shared_keywords.forEach(function (k) {
            var c = el("a", "chip chip-small", k);
            c.href = searchHref(k);
            shared.appendChild(c);
          });
          li.appendChild(shared);
        }
        list.appendChild(li);
      });
      box.hidden = !list.children.length;
    }).catch(function () { box.hidden = true; });
  }

  function say(text) {
    var m = document.getElementById("interests-message");
    if (m) m.textContent = text;
  }

  function wireInterestTools() {
    var exp = document.getElementById("interests-export");
    if (!exp) return;
    exp.addEventListener("click", function () {
      var blob = new Blob([JSON.stringify(load(), null, 2)], { type: "application/json" });
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "papers-interests.json";
      document.body.appendChild(a);
      a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      say("Exported.");
    });
    document.getElementById("interests-import").addEventListener("change", function (ev) {
      var file = ev.target.files && ev.target.files[0];
      if (!file) return;
      var reader = new FileReader();
      reader.onload = function () {
        var d;
        try { d = JSON.parse(String(reader.result)); } catch (e) { d = null; }
        if (!isValid(d)) { say("That file is not a papers interests export."); return; }
        save({ version: 1, keywords: d.keywords, papers: d.papers.map(String).slice(-MAX_PAPERS) });
        renderInterests();
        renderRecommendations();
        say("Imported " + Object.keys(d.keywords).length + " keywords.");
      };
      reader.readAsText(file);
      ev.target.value = "";
    });
    document.getElementById("interests-clear").addEventListener("click", function () {
      if (!window.confirm("Forget every interest keyword kept in this browser?")) return;
      try { window.localStorage.removeItem(KEY); } catch (e) { /* nothing kept */ }
      renderInterests();
      renderRecommendations();
      say("Cleared.");
    });
  }

  // -- copy buttons ---------------------------------------------------------------------------
  function copyText(text, done) {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { legacyCopy(text); done(); });
    } else { legacyCopy(text); done(); }
  }

  function legacyCopy(text) {
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.appendChild(ta);
    ta.select();
    try { document.execCommand("copy"); } catch (e) { /* user can still select the text */ }
    ta.remove();
  }

  function wireCopy() {
    document.querySelectorAll("[data-copy], [data-copy-target]").forEach(function (btn) {
      var target = document.getElementById(btn.getAttribute("data-copy") || btn.getAttribute("data-copy-target"));
      if (!target) return;
      var label = btn.getAttribute("data-copy-label");
      if (label) btn.textContent = label;
      btn.hidden = false;
      btn.addEventListener("click", function (ev) {
        ev.preventDefault();
        var original = btn.textContent;
        copyText(target.textContent, function () {
          btn.textContent = "Copied ✓";
          btn.setAttribute("data-copied", "1");
          setTimeout(function () { btn.textContent = original; }, 1600);
        });
      });
    });
  }

  // -- TeX: load the local KaTeX only when a page has maths ----------------------------------
  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = reject;
      document.head.appendChild(s);
    });
  }

  function renderTeX() {
    var nodes = Array.prototype.filter.call(document.querySelectorAll(".tex"), function (el) {
      return /\$|\\\(|\\\[/.test(el.textContent);
    });
    if (!nodes.length) return;
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = "/static/katex/katex.min.css";
    document.head.appendChild(css);
    loadScript("/static/katex/katex.min.js")
      .then(function () { return loadScript("/static/katex/auto-render.min.js"); })
      .then(function () {
        nodes.forEach(function (el) {
          window.renderMathInElement(el, {
            delimiters: [
              { left: "$$", right: "$$", display: true },
              { left: "\\[", right: "\\]", display: true },
              { left: "$", right: "$", display: false },
              { left: "\\(", right: "\\)", display: false }
            ],
            throwOnError: false,
            strict: "ignore",
            trust: false
          });
        });
        document.documentElement.setAttribute("data-tex-rendered", "1");
      })
      .catch(function () { /* raw TeX stays readable */ });
  }

  // -- small conveniences ---------------------------------------------------------------------
  function wireKeyboard() {
    document.addEventListener("keydown", function (ev) {
      if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      var t = ev.target;
      if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
      var box = document.querySelector("[data-slash-focus]");
      if (box) { ev.preventDefault(); box.focus(); box.select(); }
    });
    document.querySelectorAll("[data-autosubmit]").forEach(function (input) {
      input.addEventListener("change", function () { if (input.value && input.form) input.form.requestSubmit(); });
    });
  }

  // short shareable URLs: leave empty fields and defaults out of a submitted search
  function wireTidyForms() {
    document.querySelectorAll("form[data-tidy-url]").forEach(function (form) {
      form.addEventListener("submit", function () {
        Array.prototype.forEach.call(form.elements, function (f) {
          if (!f.name || f.type === "submit") return;
          var dflt = f.getAttribute("data-default");
          if (f.value === "" || (dflt !== null && f.value === dflt)) f.disabled = true;
        });
      });
    });
    // coming back through the history must not find the fields disabled
    window.addEventListener("pageshow", function () {
      document.querySelectorAll("form[data-tidy-url] [disabled]").forEach(function (f) { f.disabled = false; });
    });
  }

  function init() {
    var paper = document.getElementById("paper");
    if (paper && paper.hasAttribute("data-paper-id")) recordPaper(paper);
    wirePrefs();
    wireTidyForms();
    renderInterests();
    renderRecommendations();
    wireInterestTools();
    wireCopy();
    wireKeyboard();
    renderTeX();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
