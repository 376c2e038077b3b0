// Placeholder: the quotecast JavaScript SDK is written on its own branch;
// the server embeds this file and serves it at /client.js.
export const placeholder = true;
