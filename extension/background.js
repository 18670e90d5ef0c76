// background.js — the extension's service worker: the toolbar button opens the side panel.
// (Settings live in options.html; the side panel links there while nothing is configured.)

function panelOnActionClick() {
  chrome.sidePanel.setPanelBehavior({ openPanelOnActionClick: true }).catch(() => {});
}

chrome.runtime.onInstalled.addListener(panelOnActionClick);
chrome.runtime.onStartup.addListener(panelOnActionClick);
