import { host } from "./host.js";
export const get = (key) => host().kvGet(key);
export const set = (key, value) => host().kvSet(key, value);
const remove = (key) => host().kvDelete(key);
export { remove as delete };
