import { host } from "./host.js";
export const emit = (topic, body, key) => host().emit(topic, body, key);
