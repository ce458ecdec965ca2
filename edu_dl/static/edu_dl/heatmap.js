// The class mastery heatmap: the arrow keys move between its cells (each a link to the
// student's page on that skill), Home and End to a row's first and last cell, so a keyboard
// user need not Tab through every cell. Without this script the links are still in the Tab
// order, and a "Skip past the heatmap" link comes before the table.
(function () {
  "use strict";

  function linkIn(cell) {
    return cell ? cell.querySelector("a") : null;
  }

  // The next cell with a link in the direction asked, skipping cells without one (the overall
  // column); null at the table's edge.
  function step(cell, move) {
    var current = cell;
    for (;;) {
      current = move(current);
      if (!current) {
        return null;
      }
      if (linkIn(current)) {
        return current;
      }
    }
  }

  function columnOf(cell) {
    return Array.prototype.indexOf.call(cell.parentElement.children, cell);
  }

  function sameColumn(row, index) {
    return row ? row.children[index] || null : null;
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) {
      return;
    }
    var link = event.target;
    if (!link || link.tagName !== "A" || !link.closest(".heatmap tbody")) {
      return;
    }
    var cell = link.closest("td, th");
    var index = columnOf(cell);
    var target = null;
    switch (event.key) {
      case "ArrowRight":
        target = step(cell, function (c) { return c.nextElementSibling; });
        break;
      case "ArrowLeft":
        target = step(cell, function (c) { return c.previousElementSibling; });
        break;
      case "ArrowDown":
        target = sameColumn(cell.parentElement.nextElementSibling, index);
        break;
      case "ArrowUp":
        target = sameColumn(cell.parentElement.previousElementSibling, index);
        break;
      case "Home":
        target = cell.parentElement.firstElementChild;
        break;
      case "End":
        target = cell.parentElement.lastElementChild;
        break;
      default:
        return;
    }
    var next = linkIn(target);
    if (next) {
      event.preventDefault();
      next.focus();
      next.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  });
})();
