import { host } from "./host.js";
export const sendAfterCommit = (request) => host().sendAfterCommit(request);
