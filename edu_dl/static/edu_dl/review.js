/*
 * Keyboard shortcuts of the grading queue and of one answer's review page (no library).
 *
 * The page marks its region with data-review-shortcuts="queue" or "detail" and the controls
 * the keys act on with data-shortcut="accept|score|open|next|previous|queue"; the keys are listed
 * on the page, in its "Keyboard shortcuts" section. They never fire while the person types in a
 * field, nor with Ctrl, Alt or Meta held, and a checkbox turns them off (WCAG 2.1.4: single-key
 * shortcuts must be possible to turn off), remembered on the device. Without this file every
 * control still works with Tab and Enter: the keys are only a faster way to the same buttons.
 */
(function () {
  "use strict";

  var STORAGE_KEY = "edu_dl.review.shortcuts";
  var root = document.querySelector("[data-review-shortcuts]");
  if (!root) {
    return;
  }
  var kind = root.getAttribute("data-review-shortcuts");
  var NOT_TYPED = ["checkbox", "radio", "button", "submit", "reset", "image", "file", "color"];
  var currentRow = null; // the queue's row that j / k last moved to
  var pendingRowId = null; // the row whose htmx request is on its way

  function shortcutsOn() {
    try {
      return window.localStorage.getItem(STORAGE_KEY) !== "off";
    } catch (error) {
      return true; // storage refused (private mode): the keys stay on
    }
  }

  function setShortcuts(on) {
    try {
      window.localStorage.setItem(STORAGE_KEY, on ? "on" : "off");
    } catch (error) {
      // nothing to remember it in: it holds for this page only
    }
  }

  var toggle = root.querySelector("[data-shortcuts-toggle]");
  var enabled = shortcutsOn();
  if (toggle) {
    toggle.checked = enabled;
    var hiddenWithoutScript = toggle.closest("[hidden]");
    if (hiddenWithoutScript) {
      hiddenWithoutScript.removeAttribute("hidden"); // the checkbox means nothing without it
    }
    toggle.addEventListener("change", function () {
      enabled = toggle.checked;
      setShortcuts(enabled);
    });
  }

  function isTyping(target) {
    if (!(target instanceof Element)) {
      return false;
    }
    if (target.isContentEditable) {
      return true;
    }
    var tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") {
      return true;
    }
    if (tag === "INPUT") {
      var type = (target.getAttribute("type") || "text").toLowerCase();
      return NOT_TYPED.indexOf(type) === -1;
    }
    return false;
  }

  function control(scope, name) {
    return scope ? scope.querySelector('[data-shortcut="' + name + '"]') : null;
  }

  function showShortcuts() {
    var heading = document.getElementById("shortcuts-heading");
    if (heading) {
      heading.scrollIntoView({ block: "start" });
      heading.focus();
    }
  }

  function focusScore(scope) {
    var field = control(scope, "score");
    if (field) {
      field.focus();
      if (typeof field.select === "function") {
        field.select();
      }
    }
    return Boolean(field);
  }

  function press(scope, name) {
    var button = control(scope, name);
    if (button && !button.disabled) {
      button.click();
    }
    return Boolean(button);
  }

  function follow(name) {
    var link = control(root, name);
    if (link) {
      window.location.assign(link.href);
    }
    return Boolean(link);
  }

  // --- The queue: rows ---------------------------------------------------------------------------

  function rows() {
    return Array.prototype.slice.call(root.querySelectorAll("[data-review-row]"));
  }

  function rowOf(element) {
    return element instanceof Element ? element.closest("[data-review-row]") : null;
  }

  function focusRow(row) {
    if (currentRow && currentRow !== row) {
      currentRow.classList.remove("review-row-current");
    }
    currentRow = row;
    row.classList.add("review-row-current");
    (control(row, "open") || row).focus();
  }

  function activeRow() {
    var row = rowOf(document.activeElement);
    if (row && document.contains(row)) {
      return row;
    }
    if (currentRow && document.contains(currentRow)) {
      return currentRow;
    }
    return null;
  }

  function moveRow(step) {
    var all = rows();
    if (!all.length) {
      return false;
    }
    var index = all.indexOf(activeRow());
    var target = index === -1 ? (step > 0 ? 0 : all.length - 1) : index + step;
    if (target < 0 || target >= all.length) {
      return true; // at either end: stay
    }
    focusRow(all[target]);
    return true;
  }

  function nextWaitingRow(after) {
    var all = rows();
    for (var index = all.indexOf(after) + 1; index < all.length; index += 1) {
      if (all[index].classList.contains("review-row-waiting")) {
        return all[index];
      }
    }
    return null;
  }

  var queueKeys = {
    j: function () {
      return moveRow(1);
    },
    k: function () {
      return moveRow(-1);
    },
    a: function () {
      return press(activeRow(), "accept");
    },
    o: function () {
      return focusScore(activeRow());
    },
    s: function () {
      return focusScore(activeRow());
    },
  };

  var detailKeys = {
    a: function () {
      return press(root, "accept");
    },
    o: function () {
      return focusScore(root);
    },
    s: function () {
      return focusScore(root);
    },
    j: function () {
      return follow("next");
    },
    k: function () {
      return follow("previous");
    },
    u: function () {
      return follow("queue");
    },
  };

  var keys = kind === "queue" ? queueKeys : detailKeys;

  document.addEventListener("keydown", function (event) {
    if (!enabled || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (isTyping(event.target)) {
      return;
    }
    var handled = false;
    if (event.key === "?") {
      showShortcuts();
      handled = true;
    } else if (Object.prototype.hasOwnProperty.call(keys, event.key)) {
      handled = keys[event.key]();
    }
    if (handled) {
      // Otherwise the letter would be typed into the field that the key has just focused.
      event.preventDefault();
    }
  });

  // --- After an inline accept or score (htmx) --------------------------------------------------
  // The button that was pressed is gone with its row: put the focus where the teacher goes on,
  // the next waiting answer, or on the refused field so that its error is read out.

  document.addEventListener("htmx:beforeRequest", function (event) {
    var row = rowOf(event.target);
    if (row) {
      pendingRowId = row.id;
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (!pendingRowId) {
      return;
    }
    var row = document.getElementById(pendingRowId);
    pendingRowId = null;
    if (!row) {
      return;
    }
    if (row.classList.contains("review-row-waiting")) {
      var invalid = row.querySelector('[aria-invalid="true"]');
      (invalid || row).focus();
      currentRow = row;
      return;
    }
    var next = nextWaitingRow(row);
    if (next) {
      focusRow(next);
    } else {
      row.focus();
      currentRow = row;
    }
  });
})();
