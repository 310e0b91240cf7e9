import { expect } from "chai";
import { appliersOf } from "../../../src/kube/appliers";

describe("appliersOf (who re-applies an object besides the operator)", () => {
  it("Helm v3 by its labels and annotations, Helm v4 folded into it, other server-side appliers by manager", () => {
    expect(appliersOf({ labels: { "app.kubernetes.io/managed-by": "Helm" } }, ["me"]).owners).to.deep.equal(["Helm"]);
    const v4 = appliersOf(
      { annotations: { "meta.helm.sh/release-name": "r" }, managedFields: [{ manager: "helm", operation: "Apply" }, { manager: "kube-controller-manager", operation: "Update" }] },
      ["me"],
    );
    expect(v4.owners).to.deep.equal(["Helm release r"]);
    const argo = appliersOf({ managedFields: [{ manager: "argocd-controller", operation: "Apply" }, { manager: "me", operation: "Apply" }] }, ["me"]);
    expect(argo.owners).to.deep.equal(["server-side apply by field manager argocd-controller"]);
  });

  it("nobody for objects created or updated by hand; kubectl's client-side apply flagged apart", () => {
    expect(appliersOf({ managedFields: [{ manager: "kubectl-create", operation: "Update" }] }, ["me"])).to.deep.equal({ owners: [], clientSideApply: false });
    expect(appliersOf({ annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}" } }, ["me"])).to.deep.equal({ owners: [], clientSideApply: true });
  });
});
