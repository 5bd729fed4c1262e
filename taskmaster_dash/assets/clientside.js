// Browser-side callbacks of the pages, named by ClientsideFunction(namespace, name) in Python.
// Kept in a file (not inline strings) so they are read, linted and cached like any script.
window.dash_clientside = window.dash_clientside || {};

// The infinite grids (pages/_ui.py refresh_grid_on).
window.dash_clientside.grid = {
  // After a server-side change or a new external filter: drop the grid's cached blocks so it
  // asks the server again. The last argument is the grid's id; the others only trigger.
  purge: function (...args) {
    const gridId = args[args.length - 1];
    try {
      window.dash_ag_grid.getApi(gridId).purgeInfiniteCache();
    } catch (e) {
      // the grid is not mounted (yet): it asks the server anyway when it is
    }
    return Date.now();
  },
};

// The triage list under the error charts (pages/_error_triage.py).
window.dash_clientside.triage = {
  // A change made in the side panel refreshes the list: pass the change on to its store.
  refreshOnChange: function (changed) {
    return changed;
  },
};
