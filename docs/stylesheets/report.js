/* xai-report: the few behaviours the report's pages need, without a framework.
 *
 * - Catalogue pages: filter the neuron cards by concept text (or a unit number), sort them by unit, score or
 *   label, hide the faded ones; the state lives in the address (?filter=dog&sort=score&weak=hide; not ?q=,
 *   which opens Material's search box) so a filtered view can be linked. Opening #unit-N that the filter hides
 *   clears the filter.
 * - Wide tables: a table wider than its column is marked (data-xai-wide) so the stylesheet caps the frame's
 *   height (its horizontal scroll bar stays on screen) and shows that there is more to the right.
 * - Print: lazy images are loaded and collapsed blocks opened before the browser prints.
 *
 * It lives beside extra.css so the MkDocs scaffold and the wheel ship it with the stylesheet. Material's instant
 * navigation swaps pages without reloading scripts, so the page set-up runs on each of its `document$` emissions
 * (or once on DOMContentLoaded under another theme).
 */
(function () {
  "use strict";

  function matches(card, query) {
    if (!query) return true;
    var unit = /^#?(\d+)$/.exec(query);
    if (unit) return card.dataset.unit === unit[1];
    return (card.dataset.label || "").toLowerCase().indexOf(query) !== -1;
  }

  function compare(sort) {
    if (sort === "score") {
      return function (a, b) {
        return parseFloat(b.dataset.score) - parseFloat(a.dataset.score) || a.dataset.unit - b.dataset.unit;
      };
    }
    if (sort === "label") {
      return function (a, b) {
        return a.dataset.label.localeCompare(b.dataset.label) || a.dataset.unit - b.dataset.unit;
      };
    }
    return function (a, b) {
      return a.dataset.unit - b.dataset.unit;
    };
  }

  function setUpCatalogue(tools) {
    var grid = tools.parentNode.querySelector(".xai-units");
    if (!grid || tools.dataset.xaiReady) return;
    tools.dataset.xaiReady = "1";
    var cards = Array.prototype.slice.call(grid.querySelectorAll(".xai-unit"));
    var filter = tools.querySelector(".xai-filter");
    var sort = tools.querySelector(".xai-sort");
    var hideWeak = tools.querySelector(".xai-hide-weak");
    var count = tools.querySelector(".xai-count");

    var params = new URLSearchParams(window.location.search);
    filter.value = params.get("filter") || "";
    if (params.get("sort")) sort.value = params.get("sort");
    hideWeak.checked = params.get("weak") === "hide";

    var order = null;
    function apply(remember) {
      var query = filter.value.trim().toLowerCase();
      var shown = 0;
      cards.forEach(function (card) {
        var visible = matches(card, query) && !(hideWeak.checked && card.classList.contains("xai-unit--weak"));
        card.hidden = !visible;
        if (visible) shown += 1;
      });
      if (sort.value !== order) {
        order = sort.value;
        var fragment = document.createDocumentFragment();
        cards.slice().sort(compare(order)).forEach(function (card) {
          fragment.appendChild(card);
        });
        grid.appendChild(fragment);
      }
      count.textContent = shown === cards.length ? cards.length + " neurons" : shown + " of " + cards.length + " neurons";
      if (remember) {
        var state = new URLSearchParams(window.location.search);
        [["filter", filter.value.trim()], ["sort", sort.value === "unit" ? "" : sort.value],
         ["weak", hideWeak.checked ? "hide" : ""]].forEach(function (pair) {
          if (pair[1]) state.set(pair[0], pair[1]); else state.delete(pair[0]);
        });
        var search = state.toString();
        window.history.replaceState(window.history.state, "",
          window.location.pathname + (search ? "?" + search : "") + window.location.hash);
      }
    }

    filter.addEventListener("input", function () { apply(true); });
    sort.addEventListener("change", function () { apply(true); });
    hideWeak.addEventListener("change", function () { apply(true); });
    tools.addEventListener("click", function (event) {
      var chip = event.target.closest("[data-xai-filter]");
      if (!chip) return;
      filter.value = filter.value === chip.dataset.xaiFilter ? "" : chip.dataset.xaiFilter;
      apply(true);
    });
    function reveal() {
      var target = window.location.hash && document.getElementById(decodeURIComponent(window.location.hash.slice(1)));
      var card = target && target.closest(".xai-unit");
      if (card && card.hidden) {
        filter.value = "";
        hideWeak.checked = false;
        apply(true);
        target.scrollIntoView();
      }
    }
    window.addEventListener("hashchange", reveal);
    tools.hidden = false;
    apply(false);
    reveal();
  }

  function markWideTables(root) {
    root.querySelectorAll(".md-typeset__scrollwrap").forEach(function (frame) {
      if (frame.scrollWidth > frame.clientWidth + 1) frame.setAttribute("data-xai-wide", "");
      else frame.removeAttribute("data-xai-wide");
    });
  }

  function onPage() {
    document.querySelectorAll(".xai-tools").forEach(setUpCatalogue);
    markWideTables(document);
  }

  window.addEventListener("resize", function () { markWideTables(document); });
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("img[loading=lazy]").forEach(function (img) { img.loading = "eager"; });
    document.querySelectorAll(".md-typeset details:not([open])").forEach(function (details) {
      details.setAttribute("open", "");
    });
  });

  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(onPage);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", onPage);
  } else {
    onPage();
  }
})();
