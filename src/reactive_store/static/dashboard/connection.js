// The connection status of an official ConvexClient, as the sidebar shows it.

/** Call `listener("connecting" | "open" | "reconnecting")` now and on every change;
 * returns the unsubscribe function. */
export function watchConnection(client, listener) {
  let last = null;
  const update = (state) => {
    const status = state.isWebSocketConnected ? "open"
      : state.hasEverConnected || state.connectionRetries > 0 ? "reconnecting" : "connecting";
    if (status === last) return;
    last = status;
    listener(status);
  };
  update(client.connectionState());
  return client.subscribeToConnectionState(update);
}
