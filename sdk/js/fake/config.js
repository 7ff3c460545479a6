import { host } from "./host.js";
export const get = (key) => host().configGet(key);
