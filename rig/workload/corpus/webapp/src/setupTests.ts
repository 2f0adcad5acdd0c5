import '@testing-library/jest-dom';

// Components read settings from localStorage; start every test from a clean slate.
beforeEach(() => {
  localStorage.clear();
});
