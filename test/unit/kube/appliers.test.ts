import { expect } from "chai";
import { appliersOf, describeAppliers } from "../../../src/kube/appliers";

describe("appliersOf (who re-applies an object besides the operator)", () => {
  it("Helm v3 by its labels and annotations, Helm v4 by its server-side apply manager, folded into one", () => {
    expect(appliersOf({ labels: { "app.kubernetes.io/managed-by": "Helm" } }, ["me"]).helm).to.equal("Helm");
    expect(appliersOf({ managedFields: [{ manager: "helm", operation: "Apply" }] }, ["me"])).to.deep.equal({ helm: "Helm", serverSide: [], clientSideApply: false });
    const v4 = appliersOf(
      { annotations: { "meta.helm.sh/release-name": "r", "meta.helm.sh/release-namespace": "n" }, managedFields: [{ manager: "helm", operation: "Apply" }, { manager: "kube-controller-manager", operation: "Update" }] },
      ["me"],
    );
    expect(v4).to.deep.equal({ helm: "Helm release r (namespace n)", serverSide: [], clientSideApply: false });
  });

  it("other server-side appliers by manager, the operator's own left out; kubectl's client-side apply flagged apart", () => {
    const argo = appliersOf({ managedFields: [{ manager: "argocd-controller", operation: "Apply" }, { manager: "me", operation: "Apply" }] }, ["me"]);
    expect(argo).to.deep.equal({ serverSide: ["argocd-controller"], clientSideApply: false });
    expect(describeAppliers(argo)).to.equal("server-side apply by field manager argocd-controller");
    const byHand = appliersOf({ managedFields: [{ manager: "kubectl-create", operation: "Update" }] }, ["me"]);
    expect(describeAppliers(byHand)).to.equal(undefined);
    const csa = appliersOf({ annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}" } }, ["me"]);
    expect(describeAppliers(csa)).to.equal("kubectl apply (client-side)");
  });
});
